#!/bin/sh
# Regenerates the compressed fixtures from notes64.elf with the reference
# command-line compressors, using the options Linux's build uses
# (scripts/Makefile.lib, scripts/xz_wrap.sh). Run from magic/testdata after
#   go test -run TestFixtureELFCurrent -update ..
set -eu
in=notes64.elf
gzip -n -9 -c $in >$in.gz
bzip2 -9 -c $in >$in.bz2
xz --format=xz --check=crc32 --x86 --lzma2=dict=1MiB -c $in >$in.xz
xz --format=xz --check=crc64 -c $in >$in.crc64.xz
xz --format=xz --check=sha256 -c $in >$in.sha256.xz
lzma -9 -c $in >$in.lzma
lz4 -l -9 -c $in >$in.lz4
zstd -q -19 -c $in >$in.zst
lzop -9 -c $in >$in.lzo
