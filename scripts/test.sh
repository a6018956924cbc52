#!/usr/bin/env bash
# The project's test command: every crate's tests, with the etcd store compiled in (its tests
# start their own etcd server, or say "skipped" when etcd is not installed).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --features nixl-core/etcd "$@"
