#!/usr/bin/env bash
# Configures and builds Granary into build/ (or $BUILD_DIR), with -j2 by default.
# Extra arguments go to cmake's configure step, e.g. -DGRANARY_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-2}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@"
cmake --build "$build_dir" -j "$jobs"
