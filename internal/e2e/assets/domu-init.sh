#!/bin/sh
# domU /init of the xenckpt lab: prints "DOMU: tick N" once a second on hvc0.
# The counter is a shell variable, so it lives only in guest memory: a tick
# that continues after a save/restore or migration proves memory survived.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
n=0
while :; do
	echo "DOMU: tick $n"
	n=$((n + 1))
	/bin/busybox sleep 1
done
