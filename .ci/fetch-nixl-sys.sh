#!/usr/bin/env bash
# Fetches the nixl-sys crate (default 1.5.2) from crates.io with cargo and unpacks a private
# copy. Prints the path of the unpacked crate on stdout (everything else goes to stderr).
#
#   NIXL_SYS_VERSION   crate version (default 1.5.2)
#   NIXL_SYS_WORK      where to unpack (default $CARGO_TARGET_DIR or target, /nixl-sys-suite)
set -euo pipefail
version="${NIXL_SYS_VERSION:-1.5.2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${NIXL_SYS_WORK:-${CARGO_TARGET_DIR:-$root/target}/nixl-sys-suite}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
mkdir -p "$work"

# A throwaway package that depends on the exact version: `cargo fetch` downloads it (and its
# build dependencies) through cargo's own registry client.
probe="$work/fetch-probe"
mkdir -p "$probe/src"
cat > "$probe/Cargo.toml" <<TOML
[package]
name = "nixl-sys-fetch-probe"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
nixl-sys = { version = "=$version", features = ["stub-api"] }
[workspace]
TOML
echo "" > "$probe/src/lib.rs"
(cd "$probe" && cargo fetch --quiet >&2)

crate_file=$(ls "$cargo_home"/registry/cache/*/nixl-sys-"$version".crate 2>/dev/null | head -n1 || true)
if [[ -z "$crate_file" ]]; then
    echo "fetch-nixl-sys: nixl-sys-$version.crate not found under $cargo_home/registry/cache" >&2
    exit 1
fi
dest="$work/nixl-sys-$version"
rm -rf "$dest"
tar -xzf "$crate_file" -C "$work"
# The crate pins a toolchain (rust-toolchain.toml) that this machine does not have.
rm -f "$dest/rust-toolchain.toml"
# Unpacked under our target/, cargo would take the crate for a member of our workspace; an empty
# [workspace] table makes it its own root.
grep -q '^\[workspace\]' "$dest/Cargo.toml" || printf '\n[workspace]\n' >> "$dest/Cargo.toml"
echo "$dest"
