#!/usr/bin/env bash
# The live suite's host harness (docs/live-tests.md). Run as root:
#
#   bash tests/live/harness.sh setup    BUILDDIR   before `meson test --suite live`
#   bash tests/live/harness.sh teardown BUILDDIR   after it (also after a failed or killed run)
#   bash tests/live/harness.sh status   BUILDDIR   what is there, for people
#
# setup: installs what is missing (apt-get), unpacks Debian's cloud kernel into
# BUILDDIR/live/kernel (never into the source tree), creates the users and folders
# libvirtd needs, and the folder the guests' files go to: QEMU runs as
# libvirt-qemu and must reach them wherever the clone lives (under /root, mode
# 0700, it could not), so they go to /var/lib/libvirt/images/bulkhead-<hash of
# BUILDDIR> (BUILDDIR/live/guests names it; teardown removes it); starts
# virtlogd and libvirtd only if they are not running (recording which it
# started in BUILDDIR/live/started), waits until
# qemu:///system answers, and probes once whether a KVM guest reaches /init
# (BULKHEAD_LIVE_ACCEL=kvm|tcg skips the probe). The result is
# BUILDDIR/live/accel: line 1 `kvm` or `tcg`, line 2 why.
# teardown: destroys and undefines leftover test guests (names `bulkhead-live-<pid>-...`
# whose process is gone), then stops only the daemons setup started.
#
# Idempotent. Prints one line on success; on failure says what failed, points at
# BUILDDIR/live/harness.log and exits 1. Not root: says so and exits 0 (the live
# tests then skip with exit 77). Exit 2: usage.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
uri=qemu:///system
prefix=bulkhead-live-
packages=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 busybox-static cpio)
modules=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk)

usage() { echo "usage: harness.sh setup|teardown|status BUILDDIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2" 2>/dev/null || true
build=$(cd "$2" 2>/dev/null && pwd) || { echo "live harness: build dir '$2' cannot be used" >&2; exit 1; }
live=$build/live
log=$live/harness.log
# Where the guests' files go: beside libvirt's own images, one folder per
# build dir (BULKHEAD_LIVE_IMAGES overrides the parent).
images=${BULKHEAD_LIVE_IMAGES:-/var/lib/libvirt/images}
guests=$images/bulkhead-$(printf '%s' "$build" | sha256sum | cut -c1-12)

die() {
  echo "live harness: $*" >&2
  [ -f "$log" ] && { echo "--- last lines of $log:" >&2; tail -n 15 "$log" >&2; }
  exit 1
}
say() { echo "[$(date +%T)] $*" >>"$log"; }

# ---------------------------------------------------------------- packages
missing_packages() {
  local p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

install_packages() {
  local need
  mapfile -t need < <(missing_packages)
  [ ${#need[@]} -eq 0 ] && return 0
  say "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${need[@]}" >>"$log" 2>&1; then
    say "apt-get install failed; updating the package lists once"
    apt-get update -q >>"$log" 2>&1 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${need[@]}" >>"$log" 2>&1 \
      || die "apt-get install ${need[*]} failed"
  fi
}

# ------------------------------------------------------------------ kernel
# BUILDDIR/live/kernel/{vmlinuz,modules/*.ko,version}: the kernel image and the
# virtio modules /init loads, from the package linux-image-cloud-amd64 depends on.
kernel_ready() {
  local m
  [ -s "$live/kernel/vmlinuz" ] && [ -s "$live/kernel/version" ] || return 1
  for m in "${modules[@]}"; do [ -s "$live/kernel/modules/$m.ko" ] || return 1; done
}

kernel_package() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null \
    | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}

fetch_kernel() {
  kernel_ready && return 0
  local pkg dl m f
  pkg=$(kernel_package)
  if [ -z "$pkg" ]; then
    apt-get update -q >>"$log" 2>&1 || die "apt-get update failed"
    pkg=$(kernel_package)
  fi
  [ -n "$pkg" ] || die "apt-cache finds no linux-image-* dependency of linux-image-cloud-amd64"
  say "fetching kernel package $pkg"
  dl=$live/kernel/download
  rm -rf "$live/kernel"
  mkdir -p "$dl" "$live/kernel/modules"
  # _apt cannot write into this folder; apt then downloads as root and says so.
  (cd "$dl" && apt-get download -q "$pkg" >>"$log" 2>&1) || die "apt-get download $pkg failed"
  dpkg -x "$dl"/*.deb "$dl/root" || die "dpkg -x of $pkg failed"
  f=$(find "$dl/root/boot" -name 'vmlinuz-*' | head -n 1)
  [ -n "$f" ] || die "$pkg has no boot/vmlinuz-*"
  cp "$f" "$live/kernel/vmlinuz"
  for m in "${modules[@]}"; do
    f=$(find "$dl/root/lib/modules" -name "$m.ko*" | head -n 1)
    [ -n "$f" ] || die "$pkg has no module $m"
    case "$f" in
      *.ko) cp "$f" "$live/kernel/modules/$m.ko" ;;
      *.ko.xz) xz -dc "$f" >"$live/kernel/modules/$m.ko" ;;
      *.ko.zst) zstd -qdc "$f" >"$live/kernel/modules/$m.ko" ;;
      *) die "cannot unpack module $f" ;;
    esac
  done
  echo "$pkg" >"$live/kernel/version"
  rm -rf "$dl"
}

# --------------------------------------------------------- users, folders
prepare_host() {
  getent group kvm >/dev/null || groupadd --system kvm
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  if ! getent passwd libvirt-qemu >/dev/null; then
    useradd --system --gid libvirt-qemu --groups kvm --home-dir /var/lib/libvirt \
      --no-create-home --shell /usr/sbin/nologin libvirt-qemu
  fi
  id -nG libvirt-qemu | tr ' ' '\n' | grep -qx kvm || usermod -a -G kvm libvirt-qemu
  # What udev does on a stock Debian host: QEMU runs as libvirt-qemu, in group kvm.
  if [ -c /dev/kvm ] && [ "$(stat -c %G /dev/kvm)" != kvm ]; then
    chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
  fi
  mkdir -p /var/log/libvirt/qemu /var/run/libvirt /var/lib/libvirt/qemu /var/cache/libvirt
  # The guests' folder: libvirt's images folder is 0711 as the package makes it.
  if [ ! -d "$images" ]; then mkdir -p "$images" && chmod 0711 "$images"; fi
  mkdir -p "$guests"
  chmod 0755 "$guests"
  # QEMU (as libvirt-qemu) opens the kernel, initramfs and disk there.
  local d=$guests
  while [ "$d" != / ]; do
    [ "$(( 0$(stat -c %a "$d") & 01 ))" != 0 ] \
      || die "$d is not searchable by others (chmod o+x): QEMU runs as libvirt-qemu and must reach $guests"
    d=$(dirname "$d")
  done
  echo "$guests" >"$live/guests"
  # The folder earlier versions used (inside the build dir).
  rm -rf "${live:?}/run"
}

# ---------------------------------------------------------------- daemons
# A daemon counts as running when its pid file names a live process of that
# name (not a zombie: a killed daemon whose parent has not reaped it yet, as
# after the live test that kills libvirtd).
daemon_pid() {
  local pf=/var/run/$1.pid pid state
  [ -s "$pf" ] || return 1
  pid=$(cat "$pf")
  [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ] || return 1
  echo "$pid"
}

start_daemon() {
  local d=$1 pid i
  daemon_pid "$d" >/dev/null && return 0
  # Also a daemon started without a pid file (e.g. by hand in the foreground).
  if pgrep -x -r R,S,D "$d" >/dev/null; then say "$d runs without a pid file; using it"; return 0; fi
  say "starting $d"
  "$d" -d >>"$log" 2>&1 || die "$d -d failed"
  for i in $(seq 50); do
    pid=$(daemon_pid "$d") && break
    sleep 0.1
  done
  [ -n "${pid:-}" ] || die "$d started but wrote no pid file /var/run/$d.pid"
  echo "$d $pid" >>"$live/started"
}

wait_for_libvirtd() {
  local i
  for i in $(seq 300); do
    virsh -q -c "$uri" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "libvirtd does not answer at $uri after 30 s"
}

# ---------------------------------------------------------- accelerator
# Boots one idle guest under KVM and waits for /init's READY line. On this
# machine's nested virtualisation the kernel hangs after "Probing EDD", so the
# answer is usually tcg; the probe costs up to probe_seconds once per build dir
# and whenever the kernel, QEMU or the host kernel changes.
probe_seconds=15

accel_key() {
  echo "kernel=$(cat "$live/kernel/version") qemu=$(dpkg-query -W -f='${Version}' qemu-system-x86) host=$(uname -r)"
}

write_accel() { printf '%s\n%s\n%s\n' "$1" "$2" "$(accel_key)" >"$live/accel"; }

probe_accel() {
  if [ -n "${BULKHEAD_LIVE_ACCEL:-}" ]; then
    case "$BULKHEAD_LIVE_ACCEL" in
      kvm | tcg) write_accel "$BULKHEAD_LIVE_ACCEL" "set by BULKHEAD_LIVE_ACCEL"; return 0 ;;
      *) die "BULKHEAD_LIVE_ACCEL must be kvm or tcg, not '$BULKHEAD_LIVE_ACCEL'" ;;
    esac
  fi
  if [ -s "$live/accel" ] && [ "$(sed -n 3p "$live/accel")" = "$(accel_key)" ]; then
    return 0
  fi
  if [ ! -c /dev/kvm ]; then write_accel tcg "no /dev/kvm"; return 0; fi
  if ! virsh -q -c "$uri" domcapabilities --virttype kvm >/dev/null 2>&1; then
    write_accel tcg "libvirt offers no kvm domains"; return 0
  fi
  local name=${prefix}$$-kvmprobe dir
  dir=$guests/$name
  rm -rf "$dir"
  mkdir -p "$dir"
  chmod 0755 "$dir"
  cp "$live/kernel/vmlinuz" "$dir/vmlinuz"
  bash "$here/guest-image.sh" "$dir/initrd.img" "$live/kernel/modules" 2>>"$log" \
    || die "building the probe's initramfs failed"
  cat >"$dir/domain.xml" <<EOF
<domain type='kvm'>
  <name>$name</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$dir/vmlinuz</kernel>
    <initrd>$dir/initrd.img</initrd>
    <cmdline>console=ttyS0 bulkhead.mode=idle</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'><source path='$dir/console.log'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
  local result=tcg why="" i
  if ! virsh -q -c "$uri" create "$dir/domain.xml" >>"$log" 2>&1; then
    why="a KVM guest did not start (see $log)"
  else
    for i in $(seq $((probe_seconds * 10))); do
      if grep -q '^BULKHEAD-READY' "$dir/console.log" 2>/dev/null; then result=kvm; break; fi
      sleep 0.1
    done
    virsh -q -c "$uri" destroy "$name" >/dev/null 2>&1 || true
    if [ "$result" = kvm ]; then
      why="a KVM guest reached /init"
    else
      local last
      last=$(tail -n 1 "$dir/console.log" 2>/dev/null | tr -d '\r' | cut -c1-100)
      why="a KVM guest did not reach /init within ${probe_seconds} s (${last:+last console line: }${last:-its console stayed empty})"
    fi
  fi
  say "accelerator probe: $result: $why"
  write_accel "$result" "$why"
  rm -rf "$dir"
}

# ------------------------------------------------------------------ guests
# Test guests are named bulkhead-live-<pid>-...; a guest whose process is gone
# is a leftover (a test that was killed). Guests of running processes are left.
remove_leftover_guests() {
  virsh -q -c "$uri" version >/dev/null 2>&1 || return 0
  local name pid
  while read -r name; do
    [ -n "$name" ] || continue
    case "$name" in "$prefix"*) ;; *) continue ;; esac
    pid=${name#"$prefix"}
    pid=${pid%%-*}
    if [[ "$pid" =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ]; then continue; fi
    say "removing leftover guest $name"
    virsh -q -c "$uri" destroy "$name" >>"$log" 2>&1 || true
    virsh -q -c "$uri" undefine "$name" >>"$log" 2>&1 || true
    rm -rf "${guests:?}/$name"
  done < <(virsh -q -c "$uri" list --all --name 2>/dev/null)
  # Folders of guests that no longer exist (the process died between steps).
  local d
  for d in "$guests"/"$prefix"*; do
    [ -d "$d" ] || continue
    name=${d##*/}
    pid=${name#"$prefix"}
    pid=${pid%%-*}
    if [[ "$pid" =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ]; then continue; fi
    virsh -q -c "$uri" domstate "$name" >/dev/null 2>&1 || rm -rf "$d"
  done
}

stop_started_daemons() {
  [ -f "$live/started" ] || return 0
  local d pid i
  # Reverse order: libvirtd before virtlogd.
  while read -r d pid; do
    [ -n "$d" ] || continue
    if [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$d" ]; then
      say "stopping $d ($pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for i in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
      if [ -d "/proc/$pid" ]; then
        say "$d ($pid) ignored SIGTERM for 10 s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  done < <(tac "$live/started")
  rm -f "$live/started"
}

# -------------------------------------------------------------------- main
if [ "$(id -u)" != 0 ]; then
  echo "live harness: not root; nothing done (the live tests will skip)" >&2
  exit 0
fi
mkdir -p "$live"

case "$cmd" in
  setup)
    say "setup $build"
    install_packages
    prepare_host
    fetch_kernel
    start_daemon virtlogd
    start_daemon libvirtd
    wait_for_libvirtd
    remove_leftover_guests
    probe_accel
    echo "live harness: ready ($uri, $(cat "$live/kernel/version"), accelerator $(sed -n 1p "$live/accel"): $(sed -n 2p "$live/accel"))"
    ;;
  teardown)
    say "teardown $build"
    remove_leftover_guests
    stop_started_daemons
    # The guests' folder goes once no guest of a running test is left in it.
    if [ -d "$guests" ] && rmdir "$guests" 2>/dev/null; then rm -f "$live/guests"; fi
    ;;
  status)
    echo "build dir:   $build"
    m=$(missing_packages | tr '\n' ' ')
    echo "packages:    ${m:+missing: }${m:-all installed}"
    echo "kernel:      $(kernel_ready && cat "$live/kernel/version" || echo 'not unpacked')"
    for d in virtlogd libvirtd; do
      echo "$d: $(daemon_pid $d >/dev/null && echo "running (pid $(daemon_pid $d))" || echo 'not running')"
    done
    echo "started by harness: $( [ -f "$live/started" ] && tr '\n' ' ' <"$live/started" || echo none)"
    echo "guests in:   $guests$( [ -d "$guests" ] || echo ' (not created)')"
    echo "accelerator: $( [ -s "$live/accel" ] && head -n 2 "$live/accel" | tr '\n' ' ' || echo 'not probed')"
    echo "test guests: $(virsh -q -c "$uri" list --all --name 2>/dev/null | grep "^$prefix" | tr '\n' ' ')"
    ;;
  *) usage ;;
esac
