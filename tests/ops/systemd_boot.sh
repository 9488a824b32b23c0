#!/usr/bin/env bash
# The packaged units under a real systemd, on a machine whose own init is
# not systemd (a container): boots systemd as PID 1 of fresh pid, mount,
# network, uts, ipc and cgroup namespaces, on an overlay of / whose writes go
# to a tmpfs, with the .deb's files in it; then runs
# tests/ops/systemd_boot_checks.py inside (nginx + the hardened pool: every
# node type, cancels across workers, a killed worker, a bad variable, stops,
# an upgrade's restart under load, the system calls the workers make).
# Nothing is installed on the machine, and the network namespace has only
# its own loopback.
#
#   tests/ops/systemd_boot.sh DEB       (as root, with CAP_SYS_ADMIN)
#
# Not in ctest: it needs privileges a CI container may not grant. Each wait
# is bounded; the namespaces end with the script (poweroff, then KILL).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BOOT_TIMEOUT_S=60
STOP_TIMEOUT_S=30

if [ "${1:-}" = "--inner" ]; then
  # PID 1 of the new namespaces: the overlay, the package, then systemd.
  DEB="$2"; CONTROL="$3"; S="$4"
  mount --make-rprivate /
  mount -t tmpfs -o size=512m tmpfs "$S"
  mkdir -p "$S/upper" "$S/work" "$S/root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$S/upper,workdir=$S/work" "$S/root"
  R="$S/root"
  # As dpkg would: /lib is a symlink to usr/lib on Debian 12 and stays one.
  dpkg-deb --fsys-tarfile "$DEB" | tar -x --keep-directory-symlink -C "$R"
  mkdir -p "$R/var/lib/jarvis-boot"
  cp "$CONTROL"/postinst "$CONTROL"/prerm "$R/var/lib/jarvis-boot/"
  cp "$HERE/systemd_boot_checks.py" "$R/var/lib/jarvis-boot/"
  rm -f "$R/usr/sbin/policy-rc.d" # the maintainer scripts' deb-systemd-invoke may act
  ln -sf ../sites-available/jarvis-atomic-executor.conf "$R/etc/nginx/sites-enabled/"
  rm -f "$R/etc/nginx/sites-enabled/default"
  # No identity server here; web.fetch may reach this namespace's loopback.
  sed -i 's/^JARVIS_WORKERS=.*/JARVIS_WORKERS=2/' "$R/etc/default/jarvis-atomic-executor"
  printf '%s\n' ARP_AUTH_PROFILE=dev-insecure 'JARVIS_ATOMIC_HTTP_ALLOWED_CIDRS=127.0.0.1/32:*' \
    >>"$R/etc/default/jarvis-atomic-executor"
  mkdir -p "$R/etc/systemd/system"
  printf '%s\n' '[Unit]' 'Description=jarvis-atomic-executor boot check' \
    'Wants=systemd-journald.service jarvis-atomic-executor.socket jarvis-atomic-executor.service nginx.service' \
    'After=jarvis-atomic-executor.service nginx.service' >"$R/etc/systemd/system/jarvis-boot.target"
  # What would touch the machine's kernel or devices stays off.
  for u in systemd-sysctl.service systemd-modules-load.service systemd-udevd.service \
           systemd-udev-trigger.service systemd-udev-settle.service systemd-udevd-control.socket \
           systemd-udevd-kernel.socket systemd-timesyncd.service systemd-binfmt.service \
           proc-sys-fs-binfmt_misc.automount sys-kernel-config.mount sys-kernel-debug.mount \
           sys-kernel-tracing.mount sys-fs-fuse-connections.mount systemd-remount-fs.service \
           systemd-hwdb-update.service systemd-random-seed.service dev-hugepages.mount \
           dev-mqueue.mount tmp.mount systemd-pstore.service systemd-firstboot.service \
           systemd-journal-flush.service; do
    ln -sf /dev/null "$R/etc/systemd/system/$u"
  done
  mount -t proc proc "$R/proc"
  mount --bind "$R/proc/sys" "$R/proc/sys"
  mount -o remount,bind,ro "$R/proc/sys"
  mount -t sysfs -o ro sysfs "$R/sys"
  mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
  mount -t tmpfs -o mode=755 tmpfs "$R/dev"
  for d in null zero full random urandom tty; do
    touch "$R/dev/$d"
    mount --bind "/dev/$d" "$R/dev/$d"
  done
  mkdir -p "$R/dev/pts" "$R/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
  ln -s pts/ptmx "$R/dev/ptmx"
  mount -t tmpfs tmpfs "$R/dev/shm"
  mount -t tmpfs -o mode=755 tmpfs "$R/run"
  mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
  cd "$R"
  mkdir -p .oldroot
  pivot_root . .oldroot
  umount -l /.oldroot
  exec env -i container=jarvis-boot /lib/systemd/systemd --system --unit=jarvis-boot.target \
    --log-target=console --log-level=notice >/run/pid1.log 2>&1
fi

DEB="$(realpath "${1:?usage: systemd_boot.sh DEB}")"
[ "$(id -u)" -eq 0 ] || { echo "systemd_boot.sh: needs root" >&2; exit 1; }
TMP="$(mktemp -d /tmp/jarvis-boot-host-XXXXXX)"
dpkg-deb -e "$DEB" "$TMP/control"

# A cgroup of our own, so that the namespace's systemd manages a subtree.
if [ -e /sys/fs/cgroup/unified/cgroup.procs ]; then V2=/sys/fs/cgroup/unified; else V2=/sys/fs/cgroup; fi
CG="$V2/jarvis-boot-$$"
mkdir "$CG"
(echo "$BASHPID" >"$CG/cgroup.procs"
 mkdir "$TMP/ns"
 exec unshare -m -p -n -u -i -C --fork --kill-child -- "$0" --inner "$DEB" "$TMP/control" "$TMP/ns") \
  >"$TMP/unshare.log" 2>&1 &
UNSHARE=$!
PID1=""
cleanup() {
  if [ -n "$PID1" ] && kill -0 "$PID1" 2>/dev/null; then
    kill -s SIGRTMIN+4 "$PID1" 2>/dev/null || true # poweroff
    for _ in $(seq "$STOP_TIMEOUT_S"); do kill -0 "$PID1" 2>/dev/null || break; sleep 1; done
  fi
  kill -KILL "$UNSHARE" 2>/dev/null || true # --kill-child ends the rest
  wait "$UNSHARE" 2>/dev/null || true
  find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

for _ in $(seq "$BOOT_TIMEOUT_S"); do
  PID1="$(pgrep -P "$UNSHARE" -x systemd || true)"
  [ -n "$PID1" ] && break
  sleep 1
done
[ -n "$PID1" ] || { cat "$TMP/unshare.log"; echo "FAIL: systemd did not start"; exit 1; }
IN=(nsenter -t "$PID1" -m -u -i -n -p -C -r -w)
state=""
for _ in $(seq "$BOOT_TIMEOUT_S"); do
  state="$("${IN[@]}" systemctl is-system-running 2>/dev/null || true)"
  case "$state" in running|degraded) break ;; esac
  sleep 1
done
echo "systemd in the namespace: $state"
"${IN[@]}" systemctl --no-pager --failed || true
"${IN[@]}" timeout 600 python3 /var/lib/jarvis-boot/systemd_boot_checks.py
