#!/usr/bin/env bash
# Builds intermission. Usage: scripts/build.sh [release|asan|debug]  (default release)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
kind="${1:-release}"
jobs="$(nproc)"
case "$kind" in
release) cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
         cmake --build build/release -j"$jobs" ;;
asan)    cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DINTERMISSION_SANITIZE=ON >/dev/null
         cmake --build build/asan --target unit_tests intermission -j"$jobs" ;;
debug)   cmake -S . -B build/debug -G Ninja -DCMAKE_BUILD_TYPE=Debug >/dev/null
         cmake --build build/debug -j"$jobs" ;;
*) echo "usage: $0 [release|asan|debug]" >&2; exit 2 ;;
esac
