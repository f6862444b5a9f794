#!/usr/bin/env bash
# bench/soak.sh: a mixed load against a Release mqd for a long time, sampling
# its RSS and descriptors every second (see bench/soak.py).
#
#   bench/soak.sh                      10 minutes, 60 s of warm-up
#   bench/soak.sh --duration 3600 --csv soak.csv
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=build-bench BUILD_TYPE=Release ./dev.sh build >/dev/null
exec /usr/bin/python3 bench/soak.py build-bench/mqd build-bench/bench/mqd-bench "$@"
