#!/usr/bin/env bash
# meson install into a temporary prefix, then consumers of each library, each
# built three ways: with the installed pkg-config files, with the uninstalled
# ones (meson-uninstalled/, pointing at the build and source trees), and as a
# meson subproject:
#   headers_only.cpp     the ledger, the meter and the co-location engine:
#                        header code, no library (also built with
#                        `c++ -std=c++23 -I<include>` and nothing else);
#   cgroup_consumer.cpp  the cgroup backend: libbulkhead-core, and ldd shows
#                        no libvirt;
#   consumer.cpp         the libvirt backend: libbulkhead-libvirt (and the
#                        umbrella bulkhead.pc, as existing consumers use it).
# Also checks that the tools, their man pages, bulkhead-agent's systemd unit
# and the demo host were installed.
# Usage: test_install_consumers.sh SOURCE_ROOT BUILD_ROOT
set -euo pipefail
src=$1 build=$2
for t in pkg-config c++ meson ninja ldd; do
  command -v $t >/dev/null || { echo "SKIP: $t is missing"; exit 77; }
done
tmp=$(mktemp -d /tmp/bulkhead-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
fixtures=$src/tests/fixtures
consumer=$fixtures/consumer

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
[ -f "$root/include/bulkhead/ledger/detail/ledger_impl.hpp" ] || fail "header code (detail/) not installed"
for pc in bulkhead-headers bulkhead-core bulkhead-libvirt bulkhead; do
  [ -f "$lib/pkgconfig/$pc.pc" ] || fail "$pc.pc not installed in $lib/pkgconfig"
done
for so in libbulkhead-core.so libbulkhead-libvirt.so; do
  [ -e "$lib/$so" ] || fail "$so not installed in $lib"
done
# bulkhead-agent, its man page and its systemd unit (issue 14).
[ -x "$root/bin/bulkhead-agent" ] || fail "bulkhead-agent not installed under $root/bin"
[ -f "$root/share/man/man1/bulkhead-agent.1" ] || fail "bulkhead-agent's man page not installed"
unit=$root/lib/systemd/system/bulkhead-agent.service
[ -f "$unit" ] || fail "bulkhead-agent.service not installed in $root/lib/systemd/system"
grep -q "^ExecStart=$prefix/bin/bulkhead-agent " "$unit" || fail "the installed unit does not start $prefix/bin/bulkhead-agent"
LD_LIBRARY_PATH="$lib" "$root/bin/bulkhead-agent" --version | grep -q '^bulkhead-agent ' || fail "installed bulkhead-agent --version"
[ -f "$lib/bulkhead/bulkhead-agent-libvirt.so" ] || fail "bulkhead-agent's libvirt module not installed in $lib/bulkhead"
agent_libs=$(LD_LIBRARY_PATH="$lib" ldd "$root/bin/bulkhead-agent")
if grep -q libvirt <<<"$agent_libs"; then fail "the installed bulkhead-agent links libvirt (it must load it only for --uri)"; fi
# The installed agent finds its installed libvirt module.
agent_dir=$tmp/agent-journal
mkdir -m 0750 "$agent_dir"
LD_LIBRARY_PATH="$lib" timeout 20 "$root/bin/bulkhead-agent" --journal "$agent_dir" --uri test:///default \
  --listen none --interval 100ms >"$tmp/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 100); do ls "$agent_dir"/segment-* >/dev/null 2>&1 && break; sleep 0.1; done
kill -TERM $agent_pid
wait $agent_pid || { cat "$tmp/agent.log"; fail "the installed bulkhead-agent with a libvirt URI did not run and stop cleanly"; }

demo="test://$root/share/bulkhead/demo/node.xml"
cgroup_tree=$fixtures/cgroup-v2

# check_* EXE HOW [LD_LIBRARY_PATH]: runs a consumer and checks what it
# printed and which shared objects it loads.
check_headers_only() {
  local out
  out=$("$1") || fail "$2: headers_only failed"
  [ "$out" = "reserved 4000 metered 750000000 be 8850 limit 9650" ] || fail "$2: headers_only printed '$out'"
  if ldd "$1" | grep -E 'libbulkhead|libvirt'; then fail "$2: headers_only loads a bulkhead or libvirt library"; fi
  echo "$2: headers_only: $out"
}
check_cgroup() {
  local out libs
  out=$(LD_LIBRARY_PATH=$3 "$1" "$cgroup_tree") || fail "$2: cgroup_consumer failed"
  [ "$out" = "unified 3 0" ] || fail "$2: cgroup_consumer read '$out', expected 'unified 3 0'"
  libs=$(LD_LIBRARY_PATH=$3 ldd "$1")
  grep -q 'libbulkhead-core' <<<"$libs" || fail "$2: cgroup_consumer does not load libbulkhead-core"
  if grep -E 'libvirt' <<<"$libs"; then fail "$2: cgroup_consumer loads libvirt"; fi
  echo "$2: cgroup_consumer: $out, $(grep -c '=>' <<<"$libs") shared objects, no libvirt"
}
check_libvirt() {
  local out
  out=$(LD_LIBRARY_PATH=$3 "$1" "$demo") || fail "$2: consumer failed"
  [ "$out" = "10 6 0" ] || fail "$2: consumer read '$out', expected '10 6 0'"
  # ldd's output captured first: with pipefail, `ldd | grep -q` fails when
  # grep exits at the first match and ldd then dies of SIGPIPE.
  local libs
  libs=$(LD_LIBRARY_PATH=$3 ldd "$1")
  grep -q 'libbulkhead-libvirt' <<<"$libs" || fail "$2: consumer does not load libbulkhead-libvirt"
  echo "$2: consumer: $out"
}
# build HOW OUT SOURCE PKG...: c++ with the flags of the pkg-config packages.
build() {
  local how=$1 out=$2 source=$3
  shift 3
  local flags
  flags=$(pkg-config --cflags --libs "$@") || fail "$how: pkg-config $*"
  c++ -std=c++23 -o "$out" "$source" $flags || fail "$how: building $(basename "$source") with $flags"
}

# 0. Header code with an include path alone: no -l, no pkg-config.
nlohmann_cflags=$(pkg-config --cflags nlohmann_json)
c++ -std=c++23 -I"$root/include" $nlohmann_cflags -o "$tmp/ho-plain" "$consumer/headers_only.cpp" \
  || fail "headers_only does not build with -I$root/include alone"
check_headers_only "$tmp/ho-plain" "-I alone"

# 1. Installed pkg-config files. PKG_CONFIG_SYSROOT_DIR maps their paths into DESTDIR.
export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest"
headers_libs=$(pkg-config --libs bulkhead-headers)
if grep -q -- '-l' <<<"$headers_libs"; then fail "bulkhead-headers.pc links something: $headers_libs"; fi
build installed "$tmp/ho-pc" "$consumer/headers_only.cpp" bulkhead-headers
check_headers_only "$tmp/ho-pc" "installed pkg-config"
build installed "$tmp/cg-pc" "$consumer/cgroup_consumer.cpp" bulkhead-core
check_cgroup "$tmp/cg-pc" "installed pkg-config" "$lib"
build installed "$tmp/lv-pc" "$consumer/consumer.cpp" bulkhead-libvirt
check_libvirt "$tmp/lv-pc" "installed pkg-config" "$lib"
build installed "$tmp/um-pc" "$consumer/consumer.cpp" bulkhead
check_libvirt "$tmp/um-pc" "installed pkg-config (umbrella bulkhead.pc)" "$lib"
unset PKG_CONFIG_SYSROOT_DIR

# The installed tool finds its installed demo host.
BULKHEAD_DEMO_DIR= LD_LIBRARY_PATH="$lib" "$root/bin/bulkhead-inspect" --uri "$demo" --json >/dev/null \
  || fail "installed bulkhead-inspect failed"

# 2. Uninstalled pkg-config files: the build tree's libraries, the source tree's headers.
export PKG_CONFIG_PATH="$build/meson-uninstalled"
build uninstalled "$tmp/ho-un" "$consumer/headers_only.cpp" bulkhead-headers
check_headers_only "$tmp/ho-un" "uninstalled pkg-config"
build uninstalled "$tmp/cg-un" "$consumer/cgroup_consumer.cpp" bulkhead-core
check_cgroup "$tmp/cg-un" "uninstalled pkg-config" "$build/src"
build uninstalled "$tmp/lv-un" "$consumer/consumer.cpp" bulkhead-libvirt
check_libvirt "$tmp/lv-un" "uninstalled pkg-config" "$build/src"
unset PKG_CONFIG_PATH

# 3. meson subproject.
mkdir -p "$tmp/sub/subprojects"
cp "$consumer/meson.build" "$consumer/consumer.cpp" "$consumer/cgroup_consumer.cpp" "$consumer/headers_only.cpp" "$tmp/sub/"
ln -s "$src" "$tmp/sub/subprojects/bulkhead"
# -O0 without debug info: the consumers only have to build and run, quickly.
meson setup "$tmp/sub/build" "$tmp/sub" -Dbuildtype=plain >"$tmp/sub-setup.log" 2>&1 \
  || { cat "$tmp/sub-setup.log"; fail "meson setup of the subproject consumer"; }
ninja -C "$tmp/sub/build" -j"${JOBS:-2}" headers_only cgroup_consumer consumer >"$tmp/sub-build.log" 2>&1 \
  || { tail -30 "$tmp/sub-build.log"; fail "building the subproject consumers"; }
check_headers_only "$tmp/sub/build/headers_only" "meson subproject"
check_cgroup "$tmp/sub/build/cgroup_consumer" "meson subproject" ""
check_libvirt "$tmp/sub/build/consumer" "meson subproject" ""
echo "consumers: ok"
