# 2026-12-08, d96b016's release build (cargo build --release -p nixl-ffi -p nixl-benches), quiet machine.
# 01:37-01:42 UTC: GB/s and CPU per GiB, 3 rounds, each run alone and back to back
ROUNDS=3 TOTAL=2G SHORT=256M PIECES=4 SIZES="4K 64K 1M 16M" benches/fabric/gap.sh benches/results/fabric-cpu
benches/fabric/gap_table.py benches/results/fabric-cpu/gap.txt --ratios fab-new/rma,fab-new/rma-i4,fab-new/rma-2,fab-new/tcp
benches/fabric/gap_table.py benches/results/fabric-cpu/gap.txt --cpu --ratios fab-new/tcp,rma/tcp,rma-i4/tcp,rma-req/tcp,fab-new/rma-i4
# 01:44-01:54 UTC: the same-run sweep, three times (BENCHMARKS.md "LIBFABRIC backend")
UCX_MODULES='^ib*' ITERS=32 benches/scripts/fabric.sh benches/results/fabric
UCX_MODULES='^ib*' ITERS=32 benches/scripts/fabric.sh benches/results/fabric-repeat/run-2
UCX_MODULES='^ib*' ITERS=32 benches/scripts/fabric.sh benches/results/fabric-repeat/run-3
# spin.txt, rma-readers.txt, provider-knobs.txt: console output of the commands in their headers
ROUNDS=3 TOTAL=2G SHORT=256M PIECES=4 SIZES="4K 64K" benches/fabric/gap.sh benches/results/fabric-cpu/small   # 02:08-02:12 UTC, after adding rma-req-iN
