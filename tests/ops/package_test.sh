#!/usr/bin/env bash
# The Debian package, end to end but never installed on this machine:
# builds it with scripts/package, checks its files, conffiles and Depends,
# extracts it (dpkg-deb -x) and runs the extracted binary (--version,
# --list-node-types, --check-config) and jarvis-send-request, checks the
# packaged units (tests/ops/units_check.sh) and runs lintian, failing on
# any error tag (warnings are printed).
#
#   tests/ops/package_test.sh WORKDIR     (ctest passes its own folder)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${1:?usage: package_test.sh WORKDIR}"
mkdir -p "$WORK"
TMP="$(mktemp -d "$WORK/pkg-XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS $*"; }

deb="$("$REPO/scripts/package" --no-deps --build-dir "$WORK/build-deb")"
pass "built $(basename "$deb")"

# ---- files -------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$TMP/files"
for f in /usr/sbin/jarvis-atomic-executor /usr/bin/jarvis-send-request \
         /lib/systemd/system/jarvis-atomic-executor.service \
         /lib/systemd/system/jarvis-atomic-executor.socket \
         /etc/default/jarvis-atomic-executor \
         /etc/nginx/snippets/jarvis-atomic-executor-locations.conf \
         /etc/nginx/snippets/jarvis-atomic-executor-errors.conf \
         /etc/nginx/snippets/jarvis-atomic-executor-tls-profile.conf \
         /etc/nginx/sites-available/jarvis-atomic-executor.conf \
         /etc/nginx/sites-available/jarvis-atomic-executor-tls.conf \
         /usr/share/man/man8/jarvis-atomic-executor.8.gz \
         /usr/share/man/man1/jarvis-send-request.1.gz \
         /usr/share/doc/jarvis-atomic-executor/copyright \
         /usr/share/doc/jarvis-atomic-executor/changelog.Debian.gz \
         /usr/share/doc/jarvis-atomic-executor/examples/env.example; do
  grep -qx "$f" "$TMP/files" || fail "$f is not in the package"
done
# Nothing under /usr/local, and no test or bench binary.
! grep -E '^/usr/local|jarvis-atomic-executor-test|bare-responder' "$TMP/files" ||
  fail "unexpected files in the package"
pass "files ($(grep -vc '/$' "$TMP/files") files)"

# ---- control: conffiles, Depends, maintainer scripts ---------------------
dpkg-deb -e "$deb" "$TMP/control"
# Every file under /etc, and only those, is a conffile.
grep '^/etc/.*[^/]$' "$TMP/files" | sort >"$TMP/want-conffiles"
[ "$(wc -l <"$TMP/want-conffiles")" -eq 6 ] || fail "files under /etc: $(cat "$TMP/want-conffiles")"
sort "$TMP/control/conffiles" | diff -u "$TMP/want-conffiles" - || fail "conffiles differ"
depends="$(dpkg-deb -f "$deb" Depends)"
for d in libc6 libfcgi0ldbl libjson-c5 libjwt0 libcurl4 libssl3 nginx multiwatch python3; do
  [[ ",$depends," =~ [,\ ]$d[\ ,] ]] || fail "Depends lacks $d: $depends"
done
for s in postinst prerm postrm; do
  [ -x "$TMP/control/$s" ] || fail "no executable $s"
  sh -n "$TMP/control/$s" || fail "$s is not valid sh"
done
pass "conffiles, Depends: $depends"

# ---- the extracted tree --------------------------------------------------
root="$TMP/root"
dpkg-deb -x "$deb" "$root"
unit="$root/lib/systemd/system/jarvis-atomic-executor.service"
grep -qx 'ExecStart=/usr/bin/multiwatch -f ${JARVIS_WORKERS} -r 100 -t 1000 -- /usr/sbin/jarvis-atomic-executor' "$unit" ||
  fail "ExecStart does not run /usr/sbin/jarvis-atomic-executor: $(grep ^ExecStart= "$unit")"
grep -qx 'ExecStartPre=/usr/sbin/jarvis-atomic-executor --check-config' "$unit" ||
  fail "no ExecStartPre check: $(grep ^ExecStartPre "$unit" || true)"
grep -qx 'EnvironmentFile=-/etc/default/jarvis-atomic-executor' "$unit" || fail "EnvironmentFile"
bin="$root/usr/sbin/jarvis-atomic-executor"
version="$("$bin" --version)"
[[ "$version" =~ ^jarvis-atomic-executor\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version: $version"
[[ "$(basename "$deb")" == "jarvis-atomic-executor_${version#* }-1_"* ]] ||
  fail "package version is not the binary's ($version)"
"$bin" --list-node-types | python3 -c '
import json, sys
ids = [n["node_type_id"] for n in json.load(sys.stdin)]
assert "jarvis.core.echo" in ids and "jarvis.web.fetch" in ids, ids
assert not any(i.startswith("jarvis.test.") for i in ids), ids
print("PASS --list-node-types:", len(ids), "node types")'
mkdir -m 0700 "$TMP/state"
out="$(env -i PATH=/usr/bin:/bin ARP_AUTH_PROFILE=dev-insecure JARVIS_RUN_TABLE="$TMP/state/runtable" \
       "$bin" --check-config 2>&1)" || fail "--check-config: $out"
[ ! -e "$TMP/state/runtable" ] || fail "--check-config created the run table"
pass "$version; --check-config: ${out#* msg=}"
"$root/usr/bin/jarvis-send-request" --help | grep -q -- '--request' || fail "jarvis-send-request --help"
[ "$(head -n 1 "$root/usr/bin/jarvis-send-request")" = "#!/usr/bin/python3" ] ||
  fail "jarvis-send-request's interpreter"
pass "jarvis-send-request"

# ---- units ---------------------------------------------------------------
"$REPO/tests/ops/units_check.sh" "$root"

# ---- lintian ---------------------------------------------------------------
lint="$(lintian --tag-display-limit 0 "$deb" 2>&1 || true)"
printf '%s\n' "$lint" | grep -E '^[EWIP]: ' || true
! printf '%s\n' "$lint" | grep -q '^E: ' || fail "lintian reports errors"
pass "lintian: $(printf '%s\n' "$lint" | grep -c '^E: ' || true) errors, $(printf '%s\n' "$lint" | grep -c '^W: ' || true) warnings"
