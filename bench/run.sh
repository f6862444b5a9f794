#!/usr/bin/env bash
# bench/run.sh: mqd against Redis, same machine, same run; writes docs/BENCHMARKS.md.
#
#   bench/run.sh           every scenario, each cell three times, servers interleaved
#   bench/run.sh --quick   each cell once, 2 seconds (to try it out)
#
# Builds a Release mqd in build-bench/ and installs what is missing (the build
# tools through dev.sh, and redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=build-bench BUILD_TYPE=Release ./dev.sh build >/dev/null
if ! command -v redis-server >/dev/null; then
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq </dev/null
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq redis-server </dev/null
fi
exec /usr/bin/python3 bench/run.py "$@"
