#!/usr/bin/env bash
# Runs Debian's real xenstored without a hypervisor, under the project's
# LD_PRELOAD shim (xenstore/internal/xsdaemon/testdata/shim.c), in the
# foreground until interrupted. The Go tests do the same by themselves
# (package xenstore/internal/xsdaemon); this is for poking at a daemon by hand.
#
#   scripts/xenstored-shim.sh c [DIR]       cxenstored, socket DIR/socket
#   scripts/xenstored-shim.sh ocaml [DIR]   oxenstored (root: private mount namespace)
#
# Then: XENSTORED_PATH=DIR/socket xenstore-ls
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-c}"
dir="${2:-$(mktemp -d /tmp/xenstored.XXXXXX)}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
gcc -O2 -Wall -Werror -shared -fPIC -o "$dir/shim.so" xenstore/internal/xsdaemon/testdata/shim.c -ldl
echo "socket: $dir/socket  (export XENSTORED_PATH=$dir/socket)" >&2
case "$kind" in
c)
  XENSTORED_RUNDIR="$dir" XENSTORED_PATH="$dir/socket" XENSTORED_ROOTDIR="$dir" \
    LD_PRELOAD="$dir/shim.so" exec /usr/lib/xen-4.17/bin/xenstored -N
  ;;
ocaml)
  chmod 755 "$dir"
  grep -v '^pid-file' /etc/xen/oxenstored.conf > "$dir/oxenstored.conf"
  cat >> "$dir/oxenstored.conf" <<CONF
pid-file = $dir/xenstored.pid
access-log-file = $dir/access.log
xenstored-log-file = $dir/xenstored.log
CONF
  mkdir -p /run/xenstored
  exec unshare -m --propagation private sh -c \
    'mount --bind "$1" /run/xenstored && LD_PRELOAD="$2" exec /usr/lib/xen-4.17/bin/oxenstored --no-fork --config-file "$3"' \
    sh "$dir" "$dir/shim.so" "$dir/oxenstored.conf"
  ;;
*)
  echo "usage: $0 c|ocaml [DIR]" >&2
  exit 2
  ;;
esac
