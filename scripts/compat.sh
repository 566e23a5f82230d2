#!/usr/bin/env bash
# Runs the Python compatibility suite (tests/compat): the published `hvac` client, unchanged and
# pinned in tests/compat/requirements.txt, against real 3-node Strongroom clusters started by the
# suite's fixture. Creates (or reuses) a virtualenv, installs the pins, then runs pytest.
#
#   STRONGROOM_BIN   the server binary (default: $CARGO_TARGET_DIR/debug/strongroom, built by
#                    `cargo build` or `cargo test`; CARGO_TARGET_DIR defaults to
#                    $HOME/.cache/strongroom-target)
#   STRONGROOM_VENV  the virtualenv (default: $HOME/.cache/strongroom-venv)
#
# Extra arguments go to pytest (e.g. `scripts/compat.sh -k kv_v2 -x`).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/strongroom-target}"
export STRONGROOM_BIN="${STRONGROOM_BIN:-$target_dir/debug/strongroom}"
venv="${STRONGROOM_VENV:-$HOME/.cache/strongroom-venv}"

if [ ! -x "$STRONGROOM_BIN" ]; then
  echo "compat: no strongroom binary at $STRONGROOM_BIN (build it, or set STRONGROOM_BIN)" >&2
  exit 1
fi

if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "compat: installing python3-venv"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "compat: creating virtualenv $venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r tests/compat/requirements.txt

exec timeout 600 "$venv/bin/python" -m pytest tests/compat "$@"
