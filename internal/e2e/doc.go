// Package e2e is the project's real-Xen tier: it boots Debian's Xen 4.17
// with a Linux dom0 inside qemu-system-x86_64 (TCG, no KVM needed), runs the
// project's own tests inside that dom0 against real PV and PVH Linux guests,
// and reports their results as Go subtests on the host.
//
// # Running
//
// As root on Debian 12 with the packages scripts/setup.sh installs
// (qemu-system-x86 xen-hypervisor-4.17-amd64 xen-utils-4.17 xenstore-utils
// linux-image-amd64 busybox-static xz-utils kmod python3):
//
//	cd internal/e2e && go test -v -count=1 -timeout 40m .
//
// This is its own Go module (with a replace of the main module) so that the
// root module's `go test -race ./...` never boots QEMU. Knobs, all
// environment variables:
//
//   - XENCKPT_LAB_MODE=full: also the slower cases (xl rollback to a
//     checkpoint, image export to the host and verify-stream-v2 there).
//     The default is the short mode meant for every CI run.
//   - XENCKPT_LAB_WORK=dir: keep build products, serial.log, qemu.cmdline
//     and the unpacked result tar (dir/out) there.
//   - XENCKPT_LAB_RUN=regexp, XENCKPT_LAB_SKIP=regexp: run only, or skip,
//     the matching in-dom0 tests (go test -run/-skip syntax, subtests too,
//     for example XENCKPT_LAB_SKIP='TestCheckpointCancel/pv').
//   - XENCKPT_LAB_TIMEOUT=duration: bound of the whole QEMU run (default
//     30m, 35m in full mode; the payload gets 4 minutes less).
//   - XENCKPT_LAB_ACCEL: QEMU's -accel (default tcg,thread=multi).
//   - XENCKPT_LAB_CPU: QEMU's -cpu (default DefaultCPU).
//
// # How it works
//
// Build (lab.go) assembles, from installed files only: the unzipped
// multiboot Xen; the ELF vmlinux extracted from Debian's xz bzImage (raw
// for dom0, gzip'd for the guests, because Xen and libxenguest unpack xz
// slowly under TCG); a busybox guest initramfs whose init prints
// "DOMU: tick N" once a second from a counter in guest memory; and an
// uncompressed dom0 initramfs (newc cpio written in Go, so no root is
// needed for device nodes) holding busybox, xl and the Xen daemons with
// every library ldd lists plus libgcc_s.so.1 (dlopen'ed by glibc), the
// modules in modprobe --show-depends order, the guest kernel, initramfs
// and configs, and the payload directory.
//
// Boot (run.go) runs QEMU under timeout(1) in its own process group, stamps
// every serial line with host time into serial.log, and follows the dom0's
// "LAB:" lines (assets/dom0-init.sh): OK/FAIL per step with its name,
// READY, the payload's output, RESULT and DONE. QEMU is stopped by its pid
// if it outlives DONE by 60 s, the deadline or the ctx. The dom0 writes a
// tar of its artefacts (logs, xl info/dmesg, guest consoles, payload
// output, timings.tsv, and in full mode the save images) to the virtio disk,
// which Boot unpacks.
//
// TestXenLab builds the payload, package indom0's tests compiled with
// CGO_ENABLED=0 and the build tag xenckpt_dom0 (plus the CLI from
// cmd/xenckpt), boots the lab and turns each in-dom0 test into a subtest.
// Every failure names its step.
package e2e
