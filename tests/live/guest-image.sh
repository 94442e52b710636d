#!/usr/bin/env bash
# Builds the live-test guest's initramfs (cpio newc, gzip): busybox-static, the
# virtio modules the harness unpacked, and tests/live/guest-init.sh as /init.
# Usage: guest-image.sh OUT.img MODULES_DIR
# Quiet on success; on failure says what was missing and exits 1.
set -euo pipefail

out=${1:?usage: guest-image.sh OUT.img MODULES_DIR}
mods=${2:?usage: guest-image.sh OUT.img MODULES_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "guest-image: $*" >&2; exit 1; }

busybox=/bin/busybox
[ -x "$busybox" ] || die "$busybox missing (apt-get install busybox-static)"
# The initramfs has no libc: busybox must be the static build.
if LC_ALL=C ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked (apt-get install busybox-static)"
fi
command -v cpio >/dev/null || die "cpio missing (apt-get install cpio)"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
  [ -f "$mods/$m.ko" ] || die "$mods/$m.ko missing (run tests/live/harness.sh setup BUILDDIR)"
done

stage=$(mktemp -d "${TMPDIR:-/tmp}/bulkhead-initramfs-XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/proc" "$stage/sys" "$stage/dev" "$stage/tmp" "$stage/lib/modules"
cp "$busybox" "$stage/bin/busybox"
cp "$here/guest-init.sh" "$stage/init"
chmod 0755 "$stage/init" "$stage/bin/busybox"
cp "$mods"/*.ko "$stage/lib/modules/"

tmp="$out.tmp.$$"
(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 > "$tmp"
mv -f "$tmp" "$out"
