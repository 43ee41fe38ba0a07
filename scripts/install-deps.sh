#!/usr/bin/env bash
# Installs everything Granary needs to build, test and benchmark, from Debian 12 packages only.
# Run as root on Debian 12 (bookworm). Safe to run again.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config g++ clang
  libboost1.81-dev liburing-dev libisal-dev librocksdb-dev libxxhash-dev libssl-dev
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  protobuf-compiler libprotobuf-dev pybind11-dev python3-dev
  fio python3 python3-pytest python3-numpy python3-torch
  python3-boto3 awscli s3cmd rclone curl redis-server etcd-server etcd-client iproute2
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
