#!/usr/bin/env bash
# Checks the installed systemd units under a root folder (an extracted
# package, or a DESTDIR install): `systemd-analyze verify` (syntax, the
# ExecStart/ExecStartPre binaries exist and are executable in that root, the
# man page Documentation= names) and `systemd-analyze security --offline`,
# whose overall exposure must stay at or under MAX (default 2.0, "OK").
#
#   tests/ops/units_check.sh ROOT [MAX]
# The root gets copies of the host's stock units (sysinit.target, ...) that
# every service depends on, and of multiwatch, which the service runs.
set -euo pipefail

ROOT="${1:?usage: units_check.sh ROOT [MAX]}"
MAX="${2:-2.0}"
fail() { echo "FAIL: $*" >&2; exit 1; }

service="$(find "$ROOT" -path '*/systemd/system/jarvis-atomic-executor.service' | head -n 1)"
[ -n "$service" ] || fail "no jarvis-atomic-executor.service under $ROOT"
unitdir="$(dirname "$service")"
[ -f "$unitdir/jarvis-atomic-executor.socket" ] || fail "no socket unit beside $service"

mkdir -p "$ROOT/lib/systemd/system" "$ROOT/usr/bin"
cp -n /lib/systemd/system/*.target /lib/systemd/system/*.slice "$ROOT/lib/systemd/system/"
[ -x "$ROOT/usr/bin/multiwatch" ] || cp /usr/bin/multiwatch "$ROOT/usr/bin/multiwatch"

# verify reads Documentation=man:... with man(1): point it at the root's pages.
manpath="$(find "$ROOT" -type d -path '*/share/man' | tr '\n' ':')"
out="$(MANPATH="$manpath" SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --root="$ROOT" \
        jarvis-atomic-executor.socket jarvis-atomic-executor.service 2>&1)" ||
  fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify says: $out"
echo "PASS verify: $(grep -h '^Exec' "$service" | tr '\n' ' ')"

out="$(systemd-analyze security --offline=yes --root="$ROOT" jarvis-atomic-executor.service 2>&1)" ||
  fail "systemd-analyze security: $out"
level="$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for jarvis-atomic-executor.service: \([0-9.]*\).*/\1/p')"
[ -n "$level" ] || fail "no overall exposure level in: $out"
printf '%s\n' "$out" | grep '✗' || true
awk -v l="$level" -v m="$MAX" 'BEGIN { exit !(l <= m) }' ||
  fail "exposure level $level is above $MAX"
echo "PASS security: exposure level $level (at most $MAX)"
