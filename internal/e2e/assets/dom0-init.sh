#!/bin/sh
# dom0 /init of the xenckpt lab (internal/e2e). It brings up the Xen control
# plane, runs the payload (the project's in-dom0 test binary) and writes a tar
# of the artefacts to /dev/vda. Every step is reported on hvc0 as a line
# starting with "LAB:" and names itself on failure; the host test parses them.
/bin/busybox --install -s /bin
. /lab/env
export PATH="/usr/lib/xen-$LAB_XENVER/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
export HOME=/root

OUT=/tmp/out
RESULT=PASS

say() { echo "LAB: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# fatal STEP DETAIL: report, then power off without artefacts (used before
# /tmp and the disk are usable).
fatal() {
	say "FAIL $1: $2"
	say "RESULT FAIL"
	say "DONE"
	poweroff -f
}

# step NAME TIMEOUT CMD...: run CMD with a hard timeout, log its output to
# $OUT/steps/NAME.log, report OK/FAIL with the duration.
step() {
	name=$1 to=$2
	shift 2
	s=$(now)
	if timeout -k 5 "$to" "$@" >"$OUT/steps/$name.log" 2>&1; then
		say "OK $name $(since "$s")s"
		return 0
	fi
	rc=$?
	say "FAIL $name: rc=$rc after $(since "$s")s: $*"
	tail -n 15 "$OUT/steps/$name.log" | sed 's/^/LAB:   | /'
	RESULT=FAIL
	return 1
}

finish() {
	xl list >"$OUT/xl-list.txt" 2>&1
	xl dmesg >"$OUT/xl-dmesg.txt" 2>&1
	dmesg >"$OUT/dom0-dmesg.txt" 2>&1
	mkdir -p "$OUT/console"
	cp /var/log/xen/console/* "$OUT/console/" 2>/dev/null
	cp /var/log/xen/*.log "$OUT/" 2>/dev/null
	# Save images for the host's verify-stream-v2: all of them, or only the
	# ones the project wrote (xenckpt-*).
	mkdir -p "$OUT/images"
	case "$LAB_EXPORT" in
	all) mv /tmp/lab-images/* "$OUT/images/" 2>/dev/null ;;
	project) mv /tmp/lab-images/xenckpt-* "$OUT/images/" 2>/dev/null ;;
	esac
	df -k /tmp >"$OUT/df.txt" 2>&1
	echo "$RESULT" >"$OUT/result"
	s=$(now)
	if timeout -k 5 300 tar -cf /dev/vda -C "$OUT" .; then
		say "OK export $(since "$s")s"
	else
		say "FAIL export: tar to /dev/vda rc=$?"
		RESULT=FAIL
	fi
	sync
	say "RESULT $RESULT"
	say "DONE"
	poweroff -f
}

say "STEP init"
mkdir -p /proc /sys /dev /run /tmp
mount -t proc proc /proc || fatal mount "proc"
mount -t sysfs sysfs /sys || fatal mount "sysfs"
mount -t devtmpfs devtmpfs /dev || fatal mount "devtmpfs"
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts || fatal mount "devpts"
mount -t tmpfs -o mode=0755 tmpfs /run || fatal mount "/run tmpfs"
mount -t tmpfs -o size=85% tmpfs /tmp || fatal mount "/tmp tmpfs"
mkdir -p "$OUT/steps" /tmp/lab-images /run/xen /run/xenstored /run/lock \
	/var/lib/xen /var/log/xen/console /root
say "OK mounts $(now)s"

while read -r mod; do
	[ -n "$mod" ] || continue
	base=${mod##*/}
	insmod "$mod" >>"$OUT/steps/insmod.log" 2>&1 || {
		say "FAIL insmod: $base"
		tail -n 5 "$OUT/steps/insmod.log" | sed 's/^/LAB:   | /'
		RESULT=FAIL
		finish
	}
done </lab/modules.list
say "OK insmod $(wc -l </lab/modules.list) modules"

mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen || { say "FAIL xenfs: mount"; RESULT=FAIL; finish; }
say "OK xenfs caps=$(cat /proc/xen/capabilities)"

step xenstored 30 xenstored --pid-file /run/xenstored.pid || finish
i=0
until xenstore-exists / 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 150 ] || { say "FAIL xenstored-ready: xenstore-exists / never succeeded"; RESULT=FAIL; finish; }
	sleep 0.2
done
say "OK xenstored-ready"
step xen-init-dom0 120 xen-init-dom0 || finish
step xenconsoled 30 xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console --timestamp=guest || finish
step xl-info 60 sh -c "xl info >$OUT/xl-info.txt" || finish
say "READY $(now)s"

if [ -x /payload/run ]; then
	mkdir -p "$OUT/payload"
	s=$(now)
	(
		cd /payload &&
			XENCKPT_IN_DOM0=1 XENCKPT_LAB_OUT="$OUT/payload" XENCKPT_LAB_MODE="$LAB_MODE" \
				XENCKPT_REQUIRE_ALL="$LAB_REQUIRE_ALL" \
				timeout -k 10 "$LAB_PAYLOAD_TIMEOUT" ./run
		echo $? >/tmp/payload.rc
	) 2>&1 | tee "$OUT/payload.log" | sed 's/^/LAB:   [payload] /'
	rc=$(cat /tmp/payload.rc 2>/dev/null || echo missing)
	if [ "$rc" = 0 ]; then
		say "OK payload $(since "$s")s"
	else
		say "FAIL payload: /payload/run rc=$rc after $(since "$s")s"
		RESULT=FAIL
	fi
else
	say "SKIP payload: no /payload/run"
fi
finish
