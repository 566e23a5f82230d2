#!/usr/bin/env bash
# CI's fault-injection runs (jepsen/README.md): one 75 s run of a 3-node cluster with the
# register, set, transit and audit workloads under kill, pause and partition faults, which must be
# valid; then a short run of servers built with --unsafe-local-reads (followers answer reads
# without a read index), which the checkers must report invalid. That run uses only the lagging
# partition (a follower that gets no replication but can still reach the leader), the shape that
# turns local reads into stale reads every time: a random shape was sometimes one in which the
# isolated node cannot commit its reads' audit records, so no stale read was released and the
# control passed by chance. Last, a 40 s run of the same unsafe build with --unsafe-no-fsync (the
# Raft log and votes are never fsynced) under the lose-unsynced nemesis (power failures of every
# node or a majority: data never fsynced is cut away, as the fsync shim preloaded into the servers
# logged it), which must be reported invalid too: the first such failure takes everything since
# the nodes started, including the vault's initialization (liveness: lost-init); after a plain
# restart it takes acknowledged writes (set: lost, register, audit: missing-record).
# Runs go to a temporary store unless JEPSEN_STORE is set.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strongroom-target}"
bin="$CARGO_TARGET_DIR/debug"
store="${JEPSEN_STORE:-$(mktemp -d)}"
seed="${JEPSEN_SEED:-1}"

cargo build --workspace --locked
timeout 600 "$bin/strongroom-jepsen" run --store "$store" --seed "$seed" --nodes 3 --time 75s \
  --workload register,set,transit,audit --nemesis kill,pause,partition

# The unsafe server: built with the testing-only feature (workspace-wide, so dependency features
# stay the same and RocksDB is not rebuilt), kept aside, and the ordinary server built back.
unsafe_bin="$CARGO_TARGET_DIR/jepsen-unsafe-bin"
cargo build --workspace --locked --features strongroom/jepsen-unsafe
mkdir -p "$unsafe_bin"
cp "$bin/strongroom" "$unsafe_bin/strongroom"
cargo build --workspace --locked

set +e
timeout 300 "$bin/strongroom-jepsen" run --store "$store" --seed "$seed" --nodes 3 --time 30s \
  --bin-dir "$unsafe_bin" --unsafe-local-reads --workload register --nemesis partition \
  --partition-shapes lagging --quiet 1s..2s --hold 5s..8s
verdict=$?
set -e
if [ "$verdict" -ne 1 ]; then
  echo "jepsen-ci: the --unsafe-local-reads run was not reported invalid (exit $verdict)" >&2
  exit 1
fi
echo "jepsen-ci: the --unsafe-local-reads run was caught, as it must be"

set +e
timeout 300 "$bin/strongroom-jepsen" run --store "$store" --seed "$seed" --nodes 3 --time 40s \
  --bin-dir "$unsafe_bin" --unsafe-no-fsync --workload register,set,transit,audit \
  --nemesis lose-unsynced
verdict=$?
set -e
if [ "$verdict" -ne 1 ]; then
  echo "jepsen-ci: the --unsafe-no-fsync run was not reported invalid (exit $verdict)" >&2
  exit 1
fi
echo "jepsen-ci: the --unsafe-no-fsync run was caught, as it must be"
