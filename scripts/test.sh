#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: first the normal build, then the same
# tests under AddressSanitizer + UndefinedBehaviorSanitizer. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

echo "=== build (RelWithDebInfo)"
BUILD_DIR=build bash scripts/build.sh

echo "=== clang -Wthread-safety (the GUARDED_BY annotations)"
# After the build: sources include the protobuf headers generated into build/.
ls src/*/*.cc | xargs -P 2 -I{} clang++ -std=c++20 -fsyntax-only -Wthread-safety \
  -Werror=thread-safety -Isrc -Iinclude -Ibuild -I/usr/include/python3.11 {}
echo "=== tests"
(cd build && ctest -j2 --output-on-failure --timeout 1200)

echo "=== build (ASan + UBSan)"
BUILD_DIR=build-asan BUILD_TYPE=Debug bash scripts/build.sh -DGRANARY_SANITIZE=ON
echo "=== tests (ASan + UBSan)"
# The crash test's kill cycles are fewer here: the sanitizers make each cycle slower, and the
# 100-cycle run above is the one that counts them.
(cd build-asan && GRANARY_CRASH_CYCLES=20 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -j2 --output-on-failure --timeout 1800)
