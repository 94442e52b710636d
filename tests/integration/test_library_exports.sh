#!/usr/bin/env bash
# What the shared libraries export (nm -D --defined-only --demangle): no
# internal symbol (anything in a `detail` namespace, a backend's private
# helpers, an impl), and the public API they are there for.
# Usage: test_library_exports.sh BUILD_ROOT LIBRARY...
set -uo pipefail
shift  # BUILD_ROOT: unused, kept for a uniform command line
command -v nm >/dev/null || { echo "SKIP: nm is missing (Debian package binutils)"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
[ $# -gt 0 ] || fail "no library given"

for lib in "$@"; do
  [ -f "$lib" ] || fail "$lib does not exist"
  syms=$(nm -D --defined-only --demangle "$lib" | cut -d' ' -f3-) || fail "nm -D $lib"
  bulkhead=$(grep -E '(^|[ :<(])bulkhead::' <<<"$syms")
  echo "$(basename "$lib"): $(wc -l <<<"$syms") exported symbols, $(grep -c . <<<"$bulkhead") of them bulkhead's"
  bad=$(grep -E '::detail::|bulkhead::(lv|cgroupfs)::|bulkhead::[a-z_]*_detail::|::impl::|\(anonymous namespace\)' <<<"$bulkhead")
  [ -z "$bad" ] || { echo "$bad" | head -20; fail "$(basename "$lib") exports internal symbols (above)"; }
  case $(basename "$lib") in
    libbulkhead-core.so*)
      want=('bulkhead::cgroup::backend::open(' 'bulkhead::resctrl::backend::open(' 'bulkhead::offload::backend::open('
            'bulkhead::offload::sysfs_backend::open(' 'bulkhead::accounting::journal::open(' 'bulkhead::rooted_dir::open('
            'bulkhead::colocation::time_zone::open(' 'bulkhead::open_desired_specs(' 'bulkhead::read_text_file(') ;;
    libbulkhead-libvirt.so*)
      want=('bulkhead::libvirt::backend::connect(' 'bulkhead::libvirt::backend::read_all()')
      grep -qE 'bulkhead::(cgroup|resctrl|accounting)::' <<<"$bulkhead" && fail "$(basename "$lib") exports core's symbols" ;;
    *) want=() ;;
  esac
  for w in "${want[@]}"; do
    grep -qF "$w" <<<"$bulkhead" || fail "$(basename "$lib") does not export $w"
  done
  # Header code is never exported: a program compiles its own copy.
  for h in 'bulkhead::ledger::' 'bulkhead::accounting::meter::' 'bulkhead::colocation::compute_be_capacity' 'bulkhead::libvirt::parse_domain_xml'; do
    grep -qF "$h" <<<"$bulkhead" && fail "$(basename "$lib") exports header code ($h...)"
  done
done
echo "library exports: ok"
