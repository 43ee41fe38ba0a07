#!/usr/bin/env bash
# Installs dependencies, builds, and runs Granary's main job on this machine. Until the
# single-node server lands, the main job is the blob engine benchmark against fio and RocksDB
# on the data directory ($GRANARY_DATA, default ./granary-data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD_DIR=build bash scripts/build.sh
data=${GRANARY_DATA:-$PWD/granary-data}
mkdir -p "$data"
exec ./build/granary bench engine --dir "$data" "$@"
