#!/usr/bin/env bash
# Builds the local test image faultline-test/busybox:1 from Debian's busybox-static.
# No registry is contacted: the image is a rootfs imported with `docker import`.
# Idempotent: exits 0 at once when the image already exists.
set -euo pipefail

IMAGE="faultline-test/busybox:1"
TC_IMAGE="faultline-test/tc:2"
DNS_IMAGE="faultline-test/dnsmasq:1"
APPLETS=(sh httpd nc sleep cat echo ls ps kill wget dd mkdir)

if docker image inspect "$IMAGE" >/dev/null 2>&1 && docker image inspect "$TC_IMAGE" >/dev/null 2>&1 \
    && docker image inspect "$DNS_IMAGE" >/dev/null 2>&1; then
    echo "test-images: $IMAGE, $TC_IMAGE and $DNS_IMAGE already exist; nothing to do"
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

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "test-images: importing $IMAGE from $(/bin/busybox | head -n 1)"
    tar -C "$rootfs" -c . | docker import \
        --change 'CMD ["/bin/sh"]' \
        --change 'LABEL faultline.test=true' \
        - "$IMAGE" >/dev/null
    echo "test-images: built $IMAGE ($(docker image inspect -f '{{.Id}}' "$IMAGE"))"
fi

# The sidecar image for network faults: busybox (sh, sleep) plus the host's tc, ip and the
# shared libraries it links, so no registry and no debootstrap are needed.
if ! docker image inspect "$TC_IMAGE" >/dev/null 2>&1; then
    if [ ! -x /usr/sbin/tc ] && [ ! -x /sbin/tc ]; then
        echo "test-images: tc missing; installing iproute2 with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
    fi
    tc_bin="$(command -v tc || echo /usr/sbin/tc)"
    tcroot="$(mktemp -d)"
    trap 'rm -rf "$rootfs" "$tcroot"' EXIT
    mkdir -p "$tcroot/bin" "$tcroot/usr/sbin" "$tcroot/tmp"
    cp /bin/busybox "$tcroot/bin/busybox"
    for applet in sh sleep cat echo kill; do ln -s busybox "$tcroot/bin/$applet"; done
    cp "$tc_bin" "$tcroot/usr/sbin/tc"
    ln -s ../usr/sbin/tc "$tcroot/bin/tc"
    # iproute2's ip too: an ingress fault on tc creates an IFB device with it.
    ip_bin="$(command -v ip || echo /usr/sbin/ip)"
    cp "$ip_bin" "$tcroot/usr/sbin/ip"
    ln -s ../usr/sbin/ip "$tcroot/bin/ip"
    # Every library tc and ip link, and the dynamic loader, at their own paths.
    for lib in $(ldd "$tc_bin" "$ip_bin" | grep -o '/[^ ]*' | grep -v ':$' | sort -u); do
        mkdir -p "$tcroot$(dirname "$lib")"
        cp -L "$lib" "$tcroot$lib"
    done
    # tc reads its distribution tables from here (netem delay distributions).
    if [ -d /usr/lib/x86_64-linux-gnu/tc ]; then
        mkdir -p "$tcroot/usr/lib/x86_64-linux-gnu"
        cp -r /usr/lib/x86_64-linux-gnu/tc "$tcroot/usr/lib/x86_64-linux-gnu/"
    fi
    echo "test-images: importing $TC_IMAGE ($("$tc_bin" -V 2>&1 | head -n 1))"
    tar -C "$tcroot" -c . | docker import \
        --change 'CMD ["/bin/sh"]' \
        --change 'LABEL faultline.test=true' \
        - "$TC_IMAGE" >/dev/null
    echo "test-images: built $TC_IMAGE"
fi

# A DNS server for the dns fault's tests: busybox plus Debian's dnsmasq and the shared
# libraries it links (dnsmasq-base), imported like the others.
if ! docker image inspect "$DNS_IMAGE" >/dev/null 2>&1; then
    if [ ! -x /usr/sbin/dnsmasq ]; then
        echo "test-images: dnsmasq missing; installing dnsmasq-base with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base >/dev/null
    fi
    dnsroot="$(mktemp -d)"
    trap 'rm -rf "$rootfs" "${tcroot:-}" "$dnsroot"' EXIT
    mkdir -p "$dnsroot/bin" "$dnsroot/usr/sbin" "$dnsroot/tmp" "$dnsroot/etc"
    cp /bin/busybox "$dnsroot/bin/busybox"
    for applet in sh sleep cat echo kill; do ln -s busybox "$dnsroot/bin/$applet"; done
    cp /usr/sbin/dnsmasq "$dnsroot/usr/sbin/dnsmasq"
    for lib in $(ldd /usr/sbin/dnsmasq | grep -o '/[^ ]*'); do
        mkdir -p "$dnsroot$(dirname "$lib")"
        cp -L "$lib" "$dnsroot$lib"
    done
    echo "root:x:0:0:root:/:/bin/sh" >"$dnsroot/etc/passwd"
    echo "root:x:0:" >"$dnsroot/etc/group"
    echo "test-images: importing $DNS_IMAGE ($(/usr/sbin/dnsmasq --version | head -n 1))"
    tar -C "$dnsroot" -c . | docker import \
        --change 'CMD ["/usr/sbin/dnsmasq", "--help"]' \
        --change 'LABEL faultline.test=true' \
        - "$DNS_IMAGE" >/dev/null
    echo "test-images: built $DNS_IMAGE"
fi
