#!/usr/bin/env bash
# Builds target/debian/sysmon_VERSION-1_ARCH.deb with cargo-deb (metadata in Cargo.toml).
# The man pages and shell completions are generated from the command line's definitions first
# (examples/package-files.rs), so the package never ships a stale copy. Extra arguments go to
# `cargo deb`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "build-deb: cargo-deb is missing; install it with: cargo install cargo-deb --locked" >&2
    exit 1
fi

out=target/package-files
rm -rf "$out"
cargo run --locked --quiet --example package-files -- "$out" >/dev/null
# Compressed as Debian wants them; -n leaves out the name and time, so the output is reproducible.
gzip -9n "$out"/man/man1/*.1
cargo deb --locked "$@"
