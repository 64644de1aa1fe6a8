#!/bin/sh
# Checks the system packages sidecache needs and installs the missing ones with apt-get.
#
#   scripts/deps.sh build    # to build: hiredis (the Redis client's protocol) and zlib (gzip)
#   scripts/deps.sh test     # to test: the above, redis-server (tests start their own) and
#                            #   chromium (the dashboard's test drives a headless browser)
#   scripts/deps.sh bench    # to benchmark: the above, wrk, curl and python3 (bench/replay; nginx
#                            #   and varnish optional)
#
# Prints nothing when everything is there. Runs apt-get as root, or through sudo; where there is
# no apt-get it names the packages to install and fails.
set -eu

need=""
want() { need="$need $1"; }

[ -f /usr/include/hiredis/hiredis.h ] || want libhiredis-dev
[ -f /usr/include/zlib.h ] || want zlib1g-dev
case "${1:-build}" in
    build) ;;
    test)
        command -v redis-server > /dev/null 2>&1 || want redis-server
        command -v chromium > /dev/null 2>&1 || want chromium ;;
    bench)
        command -v redis-server > /dev/null 2>&1 || want redis-server
        command -v wrk > /dev/null 2>&1 || want wrk
        command -v curl > /dev/null 2>&1 || want curl
        command -v python3 > /dev/null 2>&1 || want python3 ;;
    *)
        echo "usage: scripts/deps.sh build|test|bench" >&2
        exit 2 ;;
esac

if ! command -v swift > /dev/null 2>&1; then
    echo "sidecache: the Swift toolchain (6.0 or later) is not on PATH: install it from swift.org first" >&2
    exit 1
fi

[ -n "$need" ] || exit 0

if ! command -v apt-get > /dev/null 2>&1; then
    echo "sidecache: install these packages first (names as in Debian):$need" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo > /dev/null 2>&1; then
    sudo="sudo"
else
    echo "sidecache: not root and no sudo: as root, run apt-get install$need" >&2
    exit 1
fi
echo "sidecache: installing$need"
# shellcheck disable=SC2086  # the package list is meant to split
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $need
