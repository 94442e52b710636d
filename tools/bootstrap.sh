#!/usr/bin/env bash
# bulkhead's quick start on a fresh Debian 12 machine, as root.
#
#   bash tools/bootstrap.sh demo   install what is missing, build, and run
#                                  bulkhead-inspect on the bundled demo host
#   bash tools/bootstrap.sh test   install what is missing, build, and run
#                                  every test suite (what .ci/run does)
#
# Environment: BUILD_DIR (default: build), JOBS (default: 2).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mode=${1:-}
build=${BUILD_DIR:-build}
jobs=${JOBS:-2}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

[ "$mode" = demo ] || [ "$mode" = test ] || die "usage: bash tools/bootstrap.sh demo|test"

# Debian packages: to build, to run the demo, and (test) to run every suite.
build_pkgs=(g++ meson ninja-build pkg-config python3 libvirt-dev libvirt-clients
            nlohmann-json3-dev doctest-dev libboost-dev libboost-program-options-dev
            libbenchmark-dev)
test_pkgs=(clang-16 libclang-rt-16-dev prometheus prometheus-node-exporter tzdata
           libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 busybox-static cpio
           curl procps)

install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages (${missing[*]}); run as root to install them"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [ "$mode" = demo ]; then
  install_missing "${build_pkgs[@]}"
else
  install_missing "${build_pkgs[@]}" "${test_pkgs[@]}"
fi

if [ ! -f "$build/build.ninja" ]; then
  say "configuring $build"
  meson setup "$build" -Dbuildtype=debugoptimized >/dev/null
fi
say "building"
ninja -C "$build" -j"$jobs" >/dev/null

if [ "$mode" = demo ]; then
  exec "$build/tools/inspect/bulkhead-inspect" --demo
fi

status=0
if [ -x tests/live/harness.sh ] || [ -f tests/live/harness.sh ]; then
  say "starting what the live suite needs"
  bash tests/live/harness.sh setup "$build" || status=$?
fi
say "running every test suite"
meson test -C "$build" --num-processes "$jobs" --print-errorlogs || status=$?
if [ -f tests/live/harness.sh ]; then
  bash tests/live/harness.sh teardown "$build" || true
fi
exit $status
