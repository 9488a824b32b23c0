#!/usr/bin/env bash
# The systemd units as this build installs them (DESTDIR install into a
# temporary root), through tests/ops/units_check.sh: verify, and a
# `systemd-analyze security` exposure of at most 2.0.
#
#   tests/ops/units_test.sh BUILD_DIR WORKDIR
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:?usage: units_test.sh BUILD_DIR WORKDIR}"
WORK="${2:?usage: units_test.sh BUILD_DIR WORKDIR}"
mkdir -p "$WORK"
TMP="$(mktemp -d "$WORK/units-XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

DESTDIR="$TMP/root" cmake --install "$BUILD" >/dev/null
"$REPO/tests/ops/units_check.sh" "$TMP/root"
