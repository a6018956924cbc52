"""Upper bounds on the prefix-cache hit rate of a Mooncake trace, for EVALUATION.md.

Counts hits as the simulator does: leading cached blocks of the prompt, in 64-token engine
blocks (one trace block = 512 tokens = 8 engine blocks), capped at (ISL - 1) // 64, over all
prompt tokens. Caches hold whole trace blocks with LRU eviction; running requests' KV and
decode tokens are ignored (so every figure is an upper bound).

  python3 planner/eval/routing/cache_bounds.py TRACE [WORKERS] [BLOCKS_PER_WORKER]
"""
import json
import sys
from collections import OrderedDict

TRACE_BLOCK, ENGINE_BLOCK = 512, 64


def read_trace(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Lru:
    def __init__(self, capacity):
        self.capacity, self.d = capacity, OrderedDict()

    def prefix(self, ids):
        n = 0
        for h in ids:
            if h not in self.d:
                break
            n += 1
        return n

    def insert(self, ids):
        for h in ids:
            self.d[h] = None
            self.d.move_to_end(h)
        while self.capacity is not None and len(self.d) > self.capacity:
            self.d.popitem(last=False)


def hit_tokens(req, trace_blocks_hit):
    cap = (req["input_length"] - 1) // ENGINE_BLOCK
    return min(trace_blocks_hit * TRACE_BLOCK // ENGINE_BLOCK, cap) * ENGINE_BLOCK


def run(reqs, caches, route, load=None):
    hit = total = 0
    load = [0] * len(caches) if load is None else load
    for r in reqs:
        ids = r["hash_ids"]
        w = route(caches, ids, load)
        hit += hit_tokens(r, caches[w].prefix(ids))
        total += r["input_length"]
        load[w] += r["input_length"]
        caches[w].insert(ids)
    return hit / total


def longest_prefix(caches, ids, load):
    # Longest cached prefix; ties to the least-loaded worker (tokens routed so far).
    return max(range(len(caches)), key=lambda w: (caches[w].prefix(ids), -load[w]))


def main():
    reqs = read_trace(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    blocks = int(sys.argv[3]) if len(sys.argv) > 3 else 16384
    per_worker = blocks * ENGINE_BLOCK // TRACE_BLOCK
    one = lambda c, i, l: 0
    print(f"infinite shared cache:               {run(reqs, [Lru(None)], one):.3f}")
    print(f"shared LRU, {workers} x {blocks} blocks:      {run(reqs, [Lru(workers * per_worker)], one):.3f}")
    load = [0] * workers
    lp = run(reqs, [Lru(per_worker) for _ in range(workers)], longest_prefix, load)
    share = max(load) / sum(load)
    print(f"{workers} LRU caches, load-blind longest-prefix routing: {lp:.3f}"
          f" (busiest worker gets {share:.0%} of prompt tokens)")


if __name__ == "__main__":
    main()
