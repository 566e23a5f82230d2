#!/usr/bin/env bash
# The long fault-injection runs of jepsen/README.md's Results table: every workload (register,
# set, transit, audit) for 5 minutes under each nemesis in turn, one run per nemesis, on a
# 3-node cluster. Prints one table row per run (nemesis, verdict, checker line, run directory).
#
#   scripts/jepsen-long.sh [NEMESES] [TIME]     default: "kill pause partition loss clock seal" 5m
#                                               (also: membership, lose-unsynced)
#
# Runs the binaries of a release build (and the fsync shim lose-unsynced preloads) copied aside,
# so a later build cannot change them mid-run; JEPSEN_STORE (default jepsen/store) and
# JEPSEN_SEED (default 1) as in scripts/jepsen-ci.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strongroom-target}"
nemeses="${1:-kill pause partition loss clock seal}"
time="${2:-5m}"
store="${JEPSEN_STORE:-jepsen/store}"
seed="${JEPSEN_SEED:-1}"

cargo build --workspace --release --locked || exit 1
bin="$(mktemp -d)"
cp "$CARGO_TARGET_DIR/release/strongroom" "$CARGO_TARGET_DIR/release/strongroom-jepsen" \
  "$CARGO_TARGET_DIR/release/libstrongroom_fsync_shim.so" "$bin/"
commit="$(git rev-parse --short HEAD)"

echo "| nemesis | verdict | checkers | run |"
echo "|---|---|---|---|"
status=0
for nemesis in $nemeses; do
  log="$(mktemp)"
  timeout 1500 "$bin/strongroom-jepsen" run --store "$store" --seed "$seed" --nodes 3 \
    --time "$time" --workload all --nemesis "$nemesis" --bin-dir "$bin" >"$log" 2>&1
  verdict=$?
  case "$verdict" in 0) word=valid ;; 1) word=INVALID; status=1 ;; *) word="unknown ($verdict)"; status=1 ;; esac
  checkers="$(grep -E '^checkers:' "$log" | tail -1)"
  dir="$(grep -oE -- "-> .*" "$log" | head -1 | sed "s/^-> //")"
  echo "| $nemesis | $word | $checkers | $dir (commit $commit) |"
  rm -f "$log"
done
rm -rf "$bin"
exit "$status"
