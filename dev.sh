#!/usr/bin/env bash
# dev.sh: build, run and test mqd on Debian, installing what is missing.
#
#   ./dev.sh run [MQD ARGS...]   build (release) and start mqd, by default on 127.0.0.1:7000
#   ./dev.sh test                build and run every test suite (CTest)
#   ./dev.sh build               build only
#   ./dev.sh deps [PACKAGE...]   install the build and test packages, and these
#
# Builds go to build/ (override with BUILD_DIR). Needs root or sudo only when a
# Debian package is missing.
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DIR=${BUILD_DIR:-build}
# groff-base: the tests render the man pages; python3-setuptools and
# python3-wheel: the Python client's packaging; libcjson-dev: mqd-cli's JSON,
# and the tests that check the server's scanner against it; nodejs: the
# JavaScript client's tests (Node 18 or later; Debian 12 has 18); iproute2:
# the network namespaces of the keepalive test; libssl-dev: TLS (OpenSSL
# 3); python3-cryptography: the TLS tests' certificates; libwslay-dev:
# WebSocket framing
PACKAGES=(gcc libc6-dev make cmake pkg-config libcmocka-dev python3 python3-pytest groff-base
          python3-setuptools python3-wheel libcjson-dev nodejs iproute2 libssl-dev
          python3-cryptography libwslay-dev)
# for the tests only (about 100 MB, so `run` and `build` leave them out):
# the web console's test in a real, headless browser
TEST_PACKAGES=(chromium chromium-driver python3-selenium)

install_missing_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "dev.sh: installing ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq </dev/null
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

# build [TARGET]: configures and builds everything, or only TARGET, quietly
# (the compiler's output is shown only when the build fails)
build() {
    install_missing_packages
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
    local log
    log=$(mktemp)
    if ! cmake --build "$BUILD_DIR" -j "$(nproc)" ${1:+--target "$1"} >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

case "${1:-}" in
    run)
        shift
        build mqd
        exec "$BUILD_DIR/mqd" "$@"
        ;;
    test)
        PACKAGES+=("${TEST_PACKAGES[@]}")
        build
        status=0
        ctest --test-dir "$BUILD_DIR" --output-on-failure || status=$?
        echo "tests run, by suite:"
        python3 tools/test_summary.py "$BUILD_DIR/Testing/Temporary/LastTest.log"
        exit $status
        ;;
    build)
        build
        ;;
    deps)
        shift
        PACKAGES+=("${TEST_PACKAGES[@]}" "$@")
        install_missing_packages
        ;;
    *)
        echo "usage: $0 run [MQD ARGS...] | test | build | deps [PACKAGE...]" >&2
        exit 2
        ;;
esac
