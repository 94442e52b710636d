#!/bin/busybox sh
# /init of the live-test guests (tests/live, docs/live-tests.md). Runs as PID 1
# from a busybox-static initramfs and never exits (PID 1 exiting panics the kernel).
#
# Kernel command line (besides console=ttyS0):
#   bulkhead.mode=burn|idle|write|write-direct
#                                   burn: one busy loop (a whole vCPU);
#                                   idle: nothing;
#                                   write: dd to /dev/vda from 1 MiB to the end,
#                                          conv=fsync, in a loop, at full speed;
#                                   write-direct: the same with oflag=direct and
#                                          64 KiB blocks: one 64 KiB request at a
#                                          time, so the device's byte counter
#                                          grows in 64 KiB steps (buffered
#                                          writeback sends batches that QEMU's
#                                          virtio-blk merges into 2 MiB requests).
#   bulkhead.reboot_after=S         on the FIRST boot of this disk only, `reboot -f`
#                                   S seconds after READY (needs a disk).
# Disk layout: sector 0 holds "BULKHEAD-BOOTS <n>", the boots of this disk so far
# (incremented at every boot, written with fsync); the write load never touches
# the first MiB. The counter survives reboots and destroy/start, so a guest
# reboots by itself exactly once per disk, which the tests can rely on.
#
# Console lines the tests look for (one per event, at the start of a line):
#   BULKHEAD-READY boot=<n> mode=<mode>   the load runs; n = 0 without a disk
#   BULKHEAD-REBOOTING boot=<n>           just before reboot -f
#   BULKHEAD-ERROR <what>                 something the test should report

/bin/busybox mkdir -p /proc /sys /dev /tmp /bin
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Without devtmpfs (a real /dev) background jobs die at once.
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

# Verified order on the Debian cloud kernel (docs/live-tests.md).
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
  insmod "/lib/modules/$m.ko" || echo "BULKHEAD-ERROR insmod $m"
done

mode=idle
reboot_after=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    bulkhead.mode=*) mode=${arg#*=} ;;
    bulkhead.reboot_after=*) reboot_after=${arg#*=} ;;
  esac
done

# The disk appears when virtio_blk probes it; give it a moment.
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done

boot=0
if [ -b /dev/vda ]; then
  prev=$(dd if=/dev/vda bs=512 count=1 2>/dev/null | tr -d '\000' | sed -n 's/^BULKHEAD-BOOTS \([0-9][0-9]*\)$/\1/p')
  boot=$(( ${prev:-0} + 1 ))
  printf 'BULKHEAD-BOOTS %d\n' "$boot" | dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null \
    || echo "BULKHEAD-ERROR boot counter not written"
fi

case "$mode" in
  burn)
    sh -c 'while :; do :; done' &
    ;;
  write | write-direct)
    if [ -b /dev/vda ]; then
      mib=$(( $(cat /sys/block/vda/size) / 2048 - 1 ))
      if [ "$mib" -lt 1 ]; then
        echo "BULKHEAD-ERROR disk too small for bulkhead.mode=$mode (needs 2 MiB)"
      elif [ "$mode" = write ]; then
        # Writes reach the device only with conv=fsync (the page cache holds them otherwise).
        (while :; do
           dd if=/dev/zero of=/dev/vda bs=1M seek=1 count="$mib" conv=fsync 2>/dev/null || sleep 1
         done) &
      else
        (while :; do
           dd if=/dev/zero of=/dev/vda bs=64k seek=16 count=$((mib * 16)) oflag=direct conv=fsync 2>/dev/null || sleep 1
         done) &
      fi
    else
      echo "BULKHEAD-ERROR bulkhead.mode=$mode needs a disk"
    fi
    ;;
  idle) ;;
  *) echo "BULKHEAD-ERROR unknown bulkhead.mode=$mode" ;;
esac

if [ -n "$reboot_after" ]; then
  if [ "$boot" = 0 ]; then
    echo "BULKHEAD-ERROR bulkhead.reboot_after needs a disk"
  elif [ "$boot" = 1 ]; then
    (sleep "$reboot_after"; echo "BULKHEAD-REBOOTING boot=$boot"; reboot -f) &
  fi
fi

echo "BULKHEAD-READY boot=$boot mode=$mode"
while :; do sleep 3600; done
