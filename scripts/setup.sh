#!/usr/bin/env bash
# Installs the system packages a fresh Debian/Ubuntu machine needs to build and test Strongroom:
# libclang (bindgen for RocksDB) and a C++ compiler (RocksDB itself). A Rust toolchain is assumed.
# Strongroom's own protos use a vendored protoc; the benchmark's etcd-client crate needs a system
# protoc with the well-known types (protobuf-compiler, libprotobuf-dev), and the benchmark runs
# etcd 3.4 (etcd-server) as the comparison baseline. The vaultrs compatibility test links the
# system OpenSSL (libssl-dev, pkg-config); the fault-injection harness uses network namespaces,
# iptables and faketime; the hvac suite runs in a Python virtualenv (python3-venv). HSM
# auto-unseal is tested against SoftHSM2 (softhsm2: the PKCS#11 module and softhsm2-util), and
# PGP-encrypted shares are decrypted in the hvac suite by GnuPG (gnupg).
set -euo pipefail

need=()
for package in g++ libclang-dev protobuf-compiler libprotobuf-dev etcd-server libssl-dev \
  pkg-config iproute2 iptables faketime python3-venv softhsm2 gnupg; do
  dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
