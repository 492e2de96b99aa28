// Package indom0 holds tests that run inside the dom0 of the Xen lab that
// package e2e boots in QEMU: they exercise the project's code against a
// real Xen 4.17, real xenstored and real PV and PVH Linux guests, and time
// xl's own operations on the same guests as baselines.
//
// # Running
//
// The tests are behind the build tag xenckpt_dom0, so `go test ./...` on a
// host never compiles them. TestXenLab in package e2e builds them with
//
//	CGO_ENABLED=0 go test -c -tags xenckpt_dom0 ./indom0
//
// boots the lab and runs the binary in dom0 with XENCKPT_IN_DOM0=1. Built
// with the tag but run anywhere else, every test skips (fails in CI) naming
// that fix.
//
// # Lab environment
//
// In dom0: guest kernel /boot/vmlinuz (gzip'd ELF), initramfs
// /boot/initrd-domU.gz whose init prints "DOMU: tick N" once a second,
// configs /etc/xen/domU-pv.cfg and /etc/xen/domU-pvh.cfg (128 MiB, 1 vCPU),
// console logs in /var/log/xen/console/guest-<name>.log. Tests write
// artefacts to $XENCKPT_LAB_OUT (returned to the host in the result tar),
// timings to $XENCKPT_LAB_OUT/timings.tsv, and save images meant for the
// host to /tmp/lab-images.
package indom0
