#!/usr/bin/env bash
# bench/run.sh: mqd against Redis and NATS, same machine, same run; writes docs/BENCHMARKS.md.
#
#   bench/run.sh           every scenario, each cell three times, servers interleaved
#   bench/run.sh --quick   each cell once, 2 seconds, printed only (to try it out)
#
# Builds a Release mqd in build-bench/ and installs what is missing (the build
# tools through dev.sh, redis-server and nats-server).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=build-bench BUILD_TYPE=Release ./dev.sh build >/dev/null
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nats-server >/dev/null || missing+=(nats-server)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq </dev/null
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" </dev/null
fi
exec /usr/bin/python3 bench/run.py "$@"
