#!/usr/bin/env bash
# Installs, on a fresh Debian 12 machine, every package the tests need.
# Idempotent: packages already present are left alone. Needs root (or sudo).
set -euo pipefail

pkgs=(
  # real xenstored (C) and oxenstored (OCaml), libxenstore, verify-stream-v2
  xen-utils-4.17 xenstore-utils
  # Xen's C headers: the ABI truth for the layout tests and the shim
  libxen-dev gcc libc6-dev
  # Xen in QEMU (the real-Xen tier)
  qemu-system-x86 xen-hypervisor-4.17-amd64 linux-image-amd64 busybox-static
  cpio xz-utils bc kmod python3
  # network namespaces for the two-host migration test
  iproute2 util-linux
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
