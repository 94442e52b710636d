#!/usr/bin/env bash
# meson install into a temporary prefix, then two consumers read the demo host
# through the public API: one built with `pkg-config --cflags --libs
# bulkhead`, one that builds bulkhead as a meson subproject. Also checks that
# the tool, the man page and the demo host were installed.
# Usage: test_install_consumers.sh SOURCE_ROOT BUILD_ROOT
set -euo pipefail
src=$1 build=$2
for t in pkg-config g++ meson ninja; do
  command -v $t >/dev/null || { echo "SKIP: $t is missing"; exit 77; }
done
tmp=$(mktemp -d /tmp/bulkhead-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest

meson install -C "$build" --no-rebuild --destdir "$dest" --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
libdir=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="libdir"][0])')
root=$dest$prefix
case $libdir in /*) lib=$dest$libdir ;; *) lib=$root/$libdir ;; esac

fail() { echo "FAIL: $*"; exit 1; }
[ -x "$root/bin/bulkhead-inspect" ] || fail "bulkhead-inspect not installed under $root/bin"
[ -f "$root/share/man/man1/bulkhead-inspect.1" ] || fail "man page not installed"
[ -f "$root/share/bulkhead/demo/node.xml" ] || fail "demo host not installed"
[ -f "$root/include/bulkhead/backend/libvirt/backend.hpp" ] || fail "headers not installed"
[ -f "$lib/pkgconfig/bulkhead.pc" ] || fail "bulkhead.pc not installed in $lib/pkgconfig"
man -l "$root/share/man/man1/bulkhead-inspect.1" >/dev/null 2>&1 || command -v man >/dev/null || true

demo="test://$root/share/bulkhead/demo/node.xml"

# 1. pkg-config consumer. PKG_CONFIG_SYSROOT_DIR maps the .pc's paths into DESTDIR.
flags=$(PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest" pkg-config --cflags --libs bulkhead)
g++ -std=c++23 -o "$tmp/consumer-pc" "$src/tests/fixtures/consumer/consumer.cpp" $flags
out=$(LD_LIBRARY_PATH="$lib" "$tmp/consumer-pc" "$demo")
[ "$out" = "10 6 0" ] || fail "pkg-config consumer read '$out', expected '10 6 0'"
echo "pkg-config consumer: $out"

# The installed tool finds its installed demo host.
BULKHEAD_DEMO_DIR= LD_LIBRARY_PATH="$lib" "$root/bin/bulkhead-inspect" --uri "$demo" --json >/dev/null \
  || fail "installed bulkhead-inspect failed"

# 2. meson subproject consumer.
mkdir -p "$tmp/sub/subprojects"
cp "$src/tests/fixtures/consumer/meson.build" "$src/tests/fixtures/consumer/consumer.cpp" "$tmp/sub/"
ln -s "$src" "$tmp/sub/subprojects/bulkhead"
# -O0 without debug info: the consumer only has to build and run, quickly.
meson setup "$tmp/sub/build" "$tmp/sub" -Dbuildtype=plain >"$tmp/sub-setup.log" 2>&1 \
  || { cat "$tmp/sub-setup.log"; fail "meson setup of the subproject consumer"; }
ninja -C "$tmp/sub/build" -j"${JOBS:-2}" consumer >"$tmp/sub-build.log" 2>&1 \
  || { tail -30 "$tmp/sub-build.log"; fail "building the subproject consumer"; }
out=$("$tmp/sub/build/consumer" "$demo")
[ "$out" = "10 6 0" ] || fail "subproject consumer read '$out', expected '10 6 0'"
echo "meson subproject consumer: $out"
