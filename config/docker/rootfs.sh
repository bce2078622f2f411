#!/bin/sh
# Gathers a minimal root file system for a FROM scratch image: the given
# programs and exactly the shared libraries they load (as ldd lists them,
# the dynamic loader included), plus /tmp, an /etc/passwd with root and
# nobody, and the directories named with --dir.
#
# Usage: rootfs.sh DEST [--dir PATH[:MODE[:UID]]]... PROGRAM...
#   Each PROGRAM is copied to the same path under DEST.
set -eu
dest=$1
shift
mkdir -p "$dest/tmp" "$dest/etc"
chmod 1777 "$dest/tmp"
printf 'root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' \
    >"$dest/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dest/etc/group"
copy() {
    mkdir -p "$dest$(dirname "$1")"
    cp -L "$1" "$dest$1"
}
while [ $# -gt 0 ]; do
    case $1 in
    --dir)
        IFS=: read -r path mode owner <<EOT
$2
EOT
        mkdir -p "$dest$path"
        [ -z "$mode" ] || chmod "$mode" "$dest$path"
        [ -z "$owner" ] || chown "$owner:$owner" "$dest$path"
        shift 2
        continue
        ;;
    esac
    prog=$1
    shift
    copy "$prog"
    # "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
    ldd "$prog" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
        while read -r lib; do
            [ -e "$dest$lib" ] || copy "$lib"
        done
done
