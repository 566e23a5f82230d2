#!/usr/bin/env bash
# Installs the system packages a fresh Debian/Ubuntu machine needs to build and test Strongroom:
# libclang (bindgen for RocksDB) and a C++ compiler (RocksDB itself). A Rust toolchain is assumed.
# protoc is not needed: the build uses a vendored copy from crates.io.
set -euo pipefail

need=()
for package in g++ libclang-dev; do
  dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
