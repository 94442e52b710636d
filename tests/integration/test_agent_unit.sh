#!/usr/bin/env bash
# bulkhead-agent.service as systemd judges it: `systemd-analyze security
# --offline=true` must not score it worse than docs/agent.md says, and the
# unit keeps the directives the design asks for (its only writable path is
# the journal; no new privileges; private /tmp; only AF_UNIX, AF_INET,
# AF_INET6). Arguments: SOURCE_ROOT UNIT_FILE (the configured unit).
set -euo pipefail
src=$1
unit=$2
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is missing (Debian package systemd)"; exit 77; }
[ -f "$unit" ] || { echo "FAIL: no unit at $unit"; exit 1; }

# The score documented in docs/agent.md: "Overall exposure: **N.N**".
documented=$(sed -n 's/.*Overall exposure: \*\*\([0-9.]*\)\*\*.*/\1/p' "$src/docs/agent.md" | head -n 1)
[ -n "$documented" ] || { echo "FAIL: docs/agent.md states no 'Overall exposure: **N.N**'"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$unit" "$tmp/bulkhead-agent.service"
out=$(systemd-analyze security --offline=true --no-pager "$tmp/bulkhead-agent.service" 2>&1) || true
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for bulkhead-agent.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { printf '%s\n' "$out"; echo "FAIL: systemd-analyze gave no score"; exit 1; }
echo "systemd-analyze security --offline=true: $score (documented: $documented)"
if ! awk -v s="$score" -v d="$documented" 'BEGIN { exit !(s <= d) }'; then
  printf '%s\n' "$out" | grep '✗' || true
  echo "FAIL: the unit's exposure $score is worse than the documented $documented"
  exit 1
fi

fail=0
need() {
  grep -q -x -- "$1" "$unit" || { echo "FAIL: the unit lacks '$1'"; fail=1; }
}
need "ReadWritePaths=/var/lib/bulkhead-agent"
need "StateDirectory=bulkhead-agent"
need "NoNewPrivileges=yes"
need "PrivateTmp=yes"
need "ProtectSystem=strict"
need "ProtectHome=yes"
need "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"
need "SystemCallFilter=@system-service"
need "CapabilityBoundingSet="
need "Type=notify"
# The only writable path is the journal.
rw=$(grep -c '^ReadWritePaths=' "$unit")
[ "$rw" = 1 ] || { echo "FAIL: $rw ReadWritePaths= lines (only the journal's is allowed)"; fail=1; }
# ExecStart names the installed binary and the journal directory.
grep -q '^ExecStart=/.*/bulkhead-agent --journal /var/lib/bulkhead-agent ' "$unit" || { echo "FAIL: ExecStart"; fail=1; }
exit $fail
