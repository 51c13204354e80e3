#!/usr/bin/env bash
# Builds the local test image faultline-test/busybox:1 from Debian's busybox-static.
# No registry is contacted: the image is a rootfs imported with `docker import`.
# Idempotent: exits 0 at once when the image already exists.
set -euo pipefail

IMAGE="faultline-test/busybox:1"
APPLETS=(sh httpd nc sleep cat echo ls ps kill wget dd mkdir)

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "test-images: $IMAGE already exists; nothing to do"
    exit 0
fi

if [ ! -x /bin/busybox ]; then
    echo "test-images: /bin/busybox missing; installing busybox-static with apt-get"
    if [ "$(id -u)" -ne 0 ]; then
        echo "test-images: need root to install busybox-static (or install it yourself)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi

# A dynamically linked busybox would need its libraries inside the image.
if ldd /bin/busybox >/dev/null 2>&1; then
    echo "test-images: /bin/busybox is dynamically linked; install busybox-static" >&2
    exit 1
fi

rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT

mkdir -p "$rootfs/bin" "$rootfs/www" "$rootfs/tmp" "$rootfs/etc"
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in "${APPLETS[@]}"; do
    ln -s busybox "$rootfs/bin/$applet"
done
echo "hello from faultline-test" >"$rootfs/www/index.html"

echo "test-images: importing $IMAGE from $(/bin/busybox | head -n 1)"
tar -C "$rootfs" -c . | docker import \
    --change 'CMD ["/bin/sh"]' \
    --change 'LABEL faultline.test=true' \
    - "$IMAGE" >/dev/null
echo "test-images: built $IMAGE ($(docker image inspect -f '{{.Id}}' "$IMAGE"))"
