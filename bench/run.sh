#!/usr/bin/env bash
# Runs the whole Strongroom-vs-etcd comparison and writes the report.
#
#   bench/run.sh [OUT_DIR] [extra strongroom-bench suite flags...]
#
# Builds the release binaries, starts a 3-member etcd 3.4 cluster and a 3-node Strongroom cluster on
# loopback (own temp data dirs, stopped by PID at the end), runs every workload against etcd,
# Strongroom HTTP and Strongroom gRPC row by row, then the 1M-secret memory test, and writes
# OUT_DIR/report.md, OUT_DIR/results.json and OUT_DIR/latency.svg (default OUT_DIR: bench-results).
# Needs etcd (Debian `etcd-server`) and protoc (for the etcd-client crate): scripts/setup.sh
# installs both. About 14 minutes on 2 cores once the release build exists (13 min 39 s measured
# idle: rows about 6, the memory test about 8); `--memory-secrets 0` skips the memory test.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strongroom-target}"
out="${1:-bench-results}"
shift || true

command -v etcd >/dev/null || { echo "run.sh: etcd not found; run scripts/setup.sh" >&2; exit 1; }

cargo build --workspace --release
bin="$CARGO_TARGET_DIR/release"

uptime
"$bin/strongroom-bench" suite \
  --out "$out" \
  --strongroom-bin "$bin/strongroom" \
  --etcd-bin "$(command -v etcd)" \
  --warmup 1 --duration 8 \
  "$@"
uptime
echo "report: $out/report.md"
