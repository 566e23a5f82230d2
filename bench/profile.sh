#!/usr/bin/env bash
# Profiles the Strongroom nodes under one benchmark row with Linux perf: on-CPU samples of all
# three server processes during the row's measured phase (flat, self time per function), then
# the top functions, the top binaries/libraries, and the self time grouped by crate.
#
#   bench/profile.sh WORKLOAD [OUT_DIR] [BACKEND]
#       e.g. bench/profile.sh put-256            (BACKEND: strongroom-http, or strongroom-grpc)
#
# Writes OUT_DIR (default bench-profile/WORKLOAD): perf.data, top-symbols.txt, top-dsos.txt,
# by-crate.txt, and bench/ (the row's own report). Installs perf (Debian linux-perf) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strongroom-target}"
workload="${1:?usage: bench/profile.sh WORKLOAD [OUT_DIR] [BACKEND]}"
out="${2:-bench-profile/$workload}"
backend="${3:-strongroom-http}"
measure_s=30
sample_s=20

if ! command -v perf >/dev/null; then
  echo "profile: installing linux-perf"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq linux-perf >/dev/null
fi

cargo build --workspace --release --locked
bin="$CARGO_TARGET_DIR/release"
mkdir -p "$out"
log="$out/bench.log"

"$bin/strongroom-bench" suite --out "$out/bench" --strongroom-bin "$bin/strongroom" \
  --backends "$backend" --only "$workload" --warmup 3 --duration "$measure_s" \
  --memory-secrets 0 2>"$log" &
bench_pid=$!
trap 'kill "$bench_pid" 2>/dev/null || true' EXIT

# The row's measured phase has begun once the driver's progress line says so.
deadline=$((SECONDS + 300))
until grep -q ' measure ' "$log"; do
  if ! kill -0 "$bench_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "profile: the bench ended or stalled before measuring; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.5
done
pids="$(pgrep -d, -f "^$bin/strongroom server")"
echo "profile: sampling nodes $pids for ${sample_s}s during $workload"
perf record -F 499 -p "$pids" -o "$out/perf.data" -- sleep "$sample_s" 2>"$out/perf-record.log"
wait "$bench_pid"
trap - EXIT

perf report -i "$out/perf.data" --no-children --sort sym --stdio --percent-limit 0.4 \
  2>/dev/null | grep -v '^$' >"$out/top-symbols.txt"
perf report -i "$out/perf.data" --no-children --sort dso --stdio 2>/dev/null \
  | grep -v '^$' >"$out/top-dsos.txt"
perf report -i "$out/perf.data" --no-children --sort dso,sym --stdio --percent-limit 0 \
  2>/dev/null | python3 "$(dirname "$0")/perf_by_crate.py" >"$out/by-crate.txt"
grep -E 'ops/s|p50' "$out/bench/report.md" | head -5 || true
echo "profile: $out/by-crate.txt"
cat "$out/by-crate.txt"
