#!/usr/bin/env bash
# bulkhead's quick start on a fresh Debian 12 machine, as root.
#
#   bash tools/bootstrap.sh demo   install what is missing, build, and run
#                                  bulkhead-inspect on the bundled demo host
#   bash tools/bootstrap.sh test   install what is missing, build, and run
#                                  every test suite (what .ci/run does)
#
# `test` runs every suite in BUILD_DIR, then the hardening runs (issue 9,
# docs/fuzzing.md), each in a build dir of its own beside it:
#   BUILD_DIR-san   AddressSanitizer + UndefinedBehaviorSanitizer (g++):
#                   the unit, integration and crash suites;
#   BUILD_DIR-tsan  ThreadSanitizer (g++): the tests with threads;
#   BUILD_DIR-fuzz  clang-16 with libFuzzer: the fuzz suite.
# Only the libraries and tests a run needs are built there. Any sanitizer
# report fails the run. Each dir's meson-logs/testlog*.json is counted by
# .ci/run. HARDENING=0 skips the three.
# On a host with libvirtd and QEMU the live suite must run: a live test that
# skipped fails `test` (one more result, BUILD_DIR/meson-logs/testlog-live.json).
#
# Environment: BUILD_DIR (default: build), JOBS (default: 2), HARDENING (1).
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
           curl procps systemd util-linux)

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

# The live suite must run wherever it can (issue 12): on a host with libvirtd
# and QEMU, a live test that skipped (or no live test at all) fails the run.
# The verdict is one more result in meson-logs/testlog-live.json, which
# .ci/run counts with the others.
live_ran() {
  local dir=$1
  python3 - "$dir/meson-logs/testlog.json" "$dir/meson-logs/testlog-live.json" <<'PY'
import json, sys
src, out = sys.argv[1], sys.argv[2]
ran, skipped = [], []
try:
    with open(src) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            t = json.loads(line)
            # Newer meson lists the suites; meson 1.0 only names them:
            # "bulkhead:live / smoke_burn" ("project:suite+project:suite / test").
            suites = t.get("suite") or t.get("name", "").split(" / ")[0].split("+")
            if not any(s == "live" or s.endswith(":live") for s in suites):
                continue
            (skipped if t.get("result") == "SKIP" else ran).append(t)
except FileNotFoundError:
    pass
if skipped:
    why = (skipped[0].get("stdout") or "").strip().splitlines()
    name = f"live suite: {len(skipped)} of {len(ran) + len(skipped)} tests skipped on a host with libvirtd and QEMU " \
           f"(first: {skipped[0]['name']}: {why[-1] if why else 'no reason printed'})"
    ok = False
elif not ran:
    name, ok = "live suite: no live test ran on a host with libvirtd and QEMU", False
else:
    name, ok = f"live suite: all {len(ran)} tests ran (none skipped)", True
with open(out, "w") as fh:
    fh.write(json.dumps({"name": name, "result": "OK" if ok else "FAIL", "duration": 0}) + "\n")
print(name, file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}
if command -v libvirtd >/dev/null && command -v qemu-system-x86_64 >/dev/null; then
  live_ran "$build" || status=1
fi

# --- hardening (issue 9): sanitizer builds and the fuzz suite ------------------
# A sanitizer report must fail the run even when the process that printed it
# (a child a test started) exited 0: every test log is also scanned, and the
# scan is recorded as one more result (meson-logs/testlog-scan.json).
san_pattern='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|: runtime error: |WARNING: ThreadSanitizer|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer|LeakSanitizer)'

# scan DIR LABEL: records whether DIR's test log holds a sanitizer report.
scan_reports() {
  local dir=$1 label=$2 result=OK
  if [ ! -f "$dir/meson-logs/testlog.txt" ]; then
    result=ERROR
  elif grep -q -E "$san_pattern" "$dir/meson-logs/testlog.txt"; then
    result=FAIL
    say "$label: sanitizer report in $dir/meson-logs/testlog.txt:"
    grep -n -E "$san_pattern" "$dir/meson-logs/testlog.txt" | head -n 20 >&2
  fi
  printf '{"name": "%s: no sanitizer report in any test log", "result": "%s", "duration": 0}\n' \
    "$label" "$result" >"$dir/meson-logs/testlog-scan.json"
  [ "$result" = OK ]
}

# tests_of DIR SUITE...: the names of the tests of those suites (meson test --list).
tests_of() {
  local dir=$1
  shift
  local args=()
  for s in "$@"; do args+=(--suite "$s"); done
  meson test -C "$dir" --list "${args[@]}" 2>/dev/null | sed -n 's|^[^ ]* / ||p'
}

# outputs_of DIR TEST...: the build outputs those tests depend on (paths
# relative to DIR, for ninja). `meson test` would build every target of DIR
# (the shared library, the live tests, the tools' extras); building only
# these and running with --no-rebuild keeps the hardening runs within the
# CI budget.
outputs_of() {
  local dir=$1
  shift
  python3 - "$dir" "$@" <<'PY'
import json, os, subprocess, sys
d, names = sys.argv[1], set(sys.argv[2:])
intro = lambda what: json.loads(subprocess.run(["meson", "introspect", what, d], check=True,
                                               capture_output=True, text=True).stdout)
files = {t["id"]: t["filename"] for t in intro("--targets")}
out = set()
for t in intro("--tests"):
    if t["name"] in names:
        for dep in t.get("depends", []):
            out.update(os.path.relpath(f, os.path.abspath(d)) for f in files.get(dep, []))
print("\n".join(sorted(out)))
PY
}

# build_for DIR TEST...: builds what those tests need (ninja -j JOBS).
build_for() {
  local dir=$1
  shift
  local outs
  mapfile -t outs < <(outputs_of "$dir" "$@")
  [ "${#outs[@]}" -gt 0 ] || { say "no build outputs found for the tests in $dir"; return 1; }
  ninja -C "$dir" -j "$jobs" "${outs[@]}"
}

# setup_dir DIR ARGS...: configures DIR once (a later run reuses it).
setup_dir() {
  local dir=$1
  shift
  # An existing dir is regenerated first when meson.build files changed, so
  # the test lists (meson introspect) are current.
  if [ -f "$dir/build.ninja" ]; then
    ninja -C "$dir" build.ninja >/dev/null
    return
  fi
  say "configuring $dir ($*)"
  meson setup "$dir" "$@" >"${dir}.setup.log" 2>&1 || { cat "${dir}.setup.log" >&2; return 1; }
  rm -f "${dir}.setup.log"
}

if [ "${HARDENING:-1}" != 0 ]; then
  san=${build}-san tsan=${build}-tsan fuzz=${build}-fuzz
  # Without debug info, and -O0 for the sanitizer dirs (-O1 for libFuzzer,
  # whose speed is its coverage): a third of the compile time of
  # debugoptimized under ASan+UBSan on 2 cores (the largest source: 269 s at
  # -O2 -g, 118 s at -O1, 37 s at -O0), which keeps .ci/run within its
  # budget. The sanitizers still name the function of every frame; for
  # file:line in a report, reconfigure that dir with -Ddebug=true.
  fast=(-Doptimization=0 -Ddebug=false)
  fast_fuzz=(-Doptimization=1 -Ddebug=false)
  for d in "$san" "$tsan" "$fuzz"; do rm -f "$d"/meson-logs/testlog*.json "$d"/meson-logs/testlog.txt; done

  # ASan + UBSan: unit, integration and crash suites, except install_consumers
  # (it installs and builds consumer programs: packaging, not library code)
  # and header_symbols (compiles every header to inspect its symbols: no
  # code runs).
  start=$SECONDS
  if setup_dir "$san" "${fast[@]}" -Db_sanitize=address,undefined -Db_lundef=false \
       -Dbenchmarks=disabled; then
    mapfile -t san_tests < <(tests_of "$san" unit integration crash | grep -v -x -e install_consumers -e header_symbols)
    say "ASan+UBSan: ${#san_tests[@]} tests in $san"
    if build_for "$san" "${san_tests[@]}"; then
      ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C "$san" --no-rebuild --num-processes "$jobs" --print-errorlogs "${san_tests[@]}" || status=1
    else
      status=1
    fi
    scan_reports "$san" "ASan+UBSan" || status=1
  else
    status=1
  fi
  say "ASan+UBSan took $((SECONDS - start)) s"

  # TSan: the tests where threads share state: the ledger under contention,
  # the journal's group commit (its committer thread, with the accountant in
  # accounting_journal, and many appenders, a checkpointer and readers at
  # once in journal_group_commit), the agent's round thread with readers of
  # its snapshot (agent).
  start=$SECONDS
  if setup_dir "$tsan" "${fast[@]}" -Db_sanitize=thread -Db_lundef=false \
       -Dbenchmarks=disabled -Dtool=disabled; then
    tsan_tests=(ledger_concurrency accounting_journal journal_group_commit agent)
    say "TSan: ${tsan_tests[*]} in $tsan"
    if build_for "$tsan" "${tsan_tests[@]}"; then
      TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        meson test -C "$tsan" --no-rebuild --num-processes "$jobs" --print-errorlogs "${tsan_tests[@]}" || status=1
    else
      status=1
    fi
    scan_reports "$tsan" "TSan" || status=1
  else
    status=1
  fi
  say "TSan took $((SECONDS - start)) s"

  # libFuzzer: every target for -Dfuzz_seconds (30) over a copy of its corpus.
  start=$SECONDS
  if CC=clang-16 CXX=clang++-16 setup_dir "$fuzz" "${fast_fuzz[@]}" -Dfuzz=enabled -Db_lundef=false \
       -Dbenchmarks=disabled -Dtool=disabled; then
    say "fuzz suite in $fuzz"
    mapfile -t fuzz_tests < <(tests_of "$fuzz" fuzz)
    if build_for "$fuzz" "${fuzz_tests[@]}"; then
      meson test -C "$fuzz" --no-rebuild --suite fuzz --num-processes "$jobs" --print-errorlogs || status=1
    else
      status=1
    fi
    scan_reports "$fuzz" "fuzz" || status=1
  else
    status=1
  fi
  say "fuzz took $((SECONDS - start)) s"
fi
exit $status
