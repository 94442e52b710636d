#!/usr/bin/env bash
# The README's library example (extracted from README.md at build time by
# tools/extract_readme_example.py and compiled against the libraries), run
# twice: against a URI nothing answers (it must fail, naming the URI and
# saying what to do, never crash) and against libvirt's test driver (it must
# print the driver's domain).
# Usage: test_readme_example.sh EXAMPLE
set -uo pipefail
exe=$1
fail() { echo "FAIL: $*"; exit 1; }

dead='qemu+unix:///system?socket=/nonexistent/bulkhead-readme-example.sock'
out=$("$exe" "$dead" 2>&1)
rc=$?
echo "against $dead: exit $rc"
echo "$out"
[ "$rc" -ne 0 ] || fail "exit status 0 against a URI nothing answers"
[ "$rc" -lt 128 ] || fail "killed by signal $((rc - 128)) against a URI nothing answers"
grep -qF "$dead" <<<"$out" || fail "the message does not name the URI"
grep -q "libvirtd" <<<"$out" || fail "the message does not say to start libvirtd"
grep -q "test:///default" <<<"$out" || fail "the message does not offer another URI"

out=$("$exe" test:///default 2>&1)
rc=$?
echo "against test:///default: exit $rc"
echo "$out"
[ "$rc" -eq 0 ] || fail "exit status $rc against test:///default"
# The test driver's one domain: test, running, UUID 6695eb01-f6a4-8304-79aa-97f2502e193f.
grep -qx "6695eb01-f6a4-8304-79aa-97f2502e193f test running" <<<"$out" \
  || fail "the test driver's domain is not printed as '<uuid> test running'"
echo "README example: ok"
