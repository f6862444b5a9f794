#!/usr/bin/env bash
# bench/run.sh: mqd against Redis, same machine, same run; writes docs/BENCHMARKS.md.
#
#   bench/run.sh           every scenario, each cell three times, servers interleaved
#   bench/run.sh --quick   each cell once, 2 seconds (to try it out)
#
# Builds a Release mqd in build-bench/ and installs redis-server when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null; then
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq </dev/null
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq redis-server </dev/null
fi
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j "$(nproc)" >/dev/null
exec /usr/bin/python3 bench/run.py "$@"
