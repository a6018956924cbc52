#!/usr/bin/env bash
# The project's test command: every crate's tests. The etcd store is compiled in when protoc
# is available (its tests start their own etcd server, or say "skipped" when etcd is not
# installed); without protoc the etcd tests are skipped, and this says so.
set -euo pipefail
cd "$(dirname "$0")/.."
features=()
if command -v protoc >/dev/null 2>&1; then
  features=(--features nixl-core/etcd,disagg/etcd)
else
  echo "skipped: etcd store tests (protoc not installed: apt-get install protobuf-compiler libprotobuf-dev)"
fi
cargo test --workspace "${features[@]}" "$@"
