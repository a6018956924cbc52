"""Upper bounds on the prefix-cache hit rate of a Mooncake trace, and lower bounds on TTFT
percentiles from each request's own prefill time, for EVALUATION.md.

Counts hits as the simulator does: leading cached blocks of the prompt, in 64-token engine
blocks (one trace block = 512 tokens = 8 engine blocks), capped at (ISL - 1) // 64, over all
prompt tokens. Caches hold whole trace blocks with LRU eviction; running requests' KV and
decode tokens are ignored (so every figure is an upper bound).

The Belady figure is a bound for every router and every eviction policy: one cache of all
the workers' engine blocks, evicting (or never admitting) the block whose next use is
farthest, which maximises hits among all caches of that capacity (Belady's MIN); each
block is counted as a hit when cached, even if an earlier block of the prompt was not
(a prefix hit needs all of them). Splitting the capacity over workers, keeping running
requests' blocks resident and counting prefixes only can each only lower it.

The prefill times come from the workspace's timing model (crate engine-timing), through its
`lone-prefill-ms` example, which this script runs with cargo (from the repository root).

  python3 planner/eval/routing/cache_bounds.py TRACE [WORKERS] [BLOCKS_PER_WORKER]
"""
import heapq
import json
import subprocess
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


def engine_blocks(req):
    """The prompt's full 64-token engine blocks, as (trace hash id, index within it)."""
    per_trace = TRACE_BLOCK // ENGINE_BLOCK
    n = req["input_length"] // ENGINE_BLOCK
    return [(req["hash_ids"][i // per_trace], i % per_trace) for i in range(n)]


def belady_hit_rate(reqs, capacity):
    """Hit rate of an offline-optimal (Belady MIN) cache of `capacity` engine blocks."""
    accesses, caps = [], []
    for r in reqs:
        blocks = engine_blocks(r)
        accesses.append(blocks)
        caps.append((r["input_length"] - 1) // ENGINE_BLOCK)
    # Next use of every access, from a backward pass.
    flat = [b for blocks in accesses for b in blocks]
    never = len(flat)
    next_use, last = [never] * len(flat), {}
    for t in range(len(flat) - 1, -1, -1):
        next_use[t] = last.get(flat[t], never)
        last[flat[t]] = t
    cached, heap = {}, []  # block -> its next use; max-heap of (-next use, block), lazy
    hit = total = t = 0
    for r, blocks, cap in zip(reqs, accesses, caps):
        hits = 0
        for b in blocks:
            nxt = next_use[t]
            t += 1
            if b in cached:
                hits += 1
            elif len(cached) >= capacity:
                while -heap[0][0] != cached.get(heap[0][1]):
                    heapq.heappop(heap)  # stale entry
                if -heap[0][0] <= nxt:
                    continue  # every cached block is needed sooner: do not admit
                del cached[heapq.heappop(heap)[1]]
            if nxt == never:
                cached.pop(b, None)  # never used again: holding it cannot help
                continue
            cached[b] = nxt
            heapq.heappush(heap, (-nxt, b))
        hit += min(hits, cap) * ENGINE_BLOCK
        total += r["input_length"]
    return hit / total


LONE_PREFILL_MS = ["cargo", "run", "-q", "--release", "-p", "engine-timing",
                   "--example", "lone-prefill-ms"]


def lone_prefill_ms(token_counts):
    """Prefill of each request alone on an idle engine (chunked prefill), in ms, from the
    engine-timing crate's model."""
    text = "".join(f"{n}\n" for n in token_counts)
    out = subprocess.run(LONE_PREFILL_MS, input=text, capture_output=True, text=True,
                         check=True).stdout
    return [float(line) for line in out.split()]


def quantile(xs, q):
    xs = sorted(xs)
    return xs[int(q * (len(xs) - 1))]


def ttft_floor(reqs):
    """Each request's own prefill time (no queueing, no decode interference) without a
    cache and with the ideal infinite shared cache: no router can beat these percentiles."""
    seen, cold_tokens, ideal_tokens = set(), [], []
    for r in reqs:
        ids, isl = r["hash_ids"], r["input_length"]
        hit = 0
        for h in ids:
            if h not in seen:
                break
            hit += 1
        seen.update(ids)
        cached = min(hit * TRACE_BLOCK, (isl - 1) // ENGINE_BLOCK * ENGINE_BLOCK)
        cold_tokens.append(isl)
        ideal_tokens.append(isl - cached)
    cold, ideal = lone_prefill_ms(cold_tokens), lone_prefill_ms(ideal_tokens)
    for name, xs in (("no cache", cold), ("ideal cache", ideal)):
        p = [quantile(xs, q) for q in (0.5, 0.9, 0.99)]
        print(f"own prefill time, {name}: p50/p90/p99 {p[0]:.0f}/{p[1]:.0f}/{p[2]:.0f} ms")


def main():
    reqs = read_trace(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    blocks = int(sys.argv[3]) if len(sys.argv) > 3 else 16384
    per_worker = blocks * ENGINE_BLOCK // TRACE_BLOCK
    one = lambda c, i, l: 0
    print(f"infinite shared cache:               {run(reqs, [Lru(None)], one):.3f}")
    print(f"shared LRU, {workers} x {blocks} blocks:      {run(reqs, [Lru(workers * per_worker)], one):.3f}")
    for scale in (1.5, 2, 4):
        lru = run(reqs, [Lru(int(scale * workers * per_worker))], one)
        print(f"shared LRU, {scale}x that capacity:       {lru:.3f}")
    for scale in (1, 0.5, 0.25):
        best = belady_hit_rate(reqs, int(scale * workers * blocks))
        print(f"Belady (offline optimal), {scale}x that capacity pooled: {best:.3f}")
    load = [0] * workers
    lp = run(reqs, [Lru(per_worker) for _ in range(workers)], longest_prefix, load)
    share = max(load) / sum(load)
    print(f"{workers} LRU caches, load-blind longest-prefix routing: {lp:.3f}"
          f" (busiest worker gets {share:.0%} of prompt tokens)")
    ttft_floor(reqs)


if __name__ == "__main__":
    main()
