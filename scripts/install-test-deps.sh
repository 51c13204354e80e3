#!/usr/bin/env bash
# Installs on Debian everything faultline's tests need besides cargo, starts the Docker
# engine if it does not answer, and builds the local test images (scripts/test-images.sh).
# Idempotent, and silent when everything is already there. Needs root (or sudo) only when
# something is missing. `.ci/run` calls it too.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "install-test-deps: need root to run: $*" >&2
        exit 1
    fi
}

need_apt_update=1
apt_install() {
    echo "install-test-deps: installing $*"
    if [ "$need_apt_update" = 1 ]; then
        as_root apt-get update -qq
        need_apt_update=0
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# What the tests drive, by the command that proves it is there:
# - the Docker engine (end-to-end tests against real containers);
# - busybox-static, which feeds the locally built test images (no registry is reachable);
# - tc, iptables, nsenter and unshare for the network faults and their checks;
# - dnsmasq (dnsmasq-base) for the DNS server image of the dns fault's tests, python3 to
#   ask it and to count ICMP replies from inside a namespace;
# - curl to measure downloads; xmllint to check JUnit against its schema;
# - systemd-analyze to check the example timer's OnCalendar;
# - Chromium to render the HTML report; Prometheus, promtool and the Pushgateway for the
#   observability tests;
# - openssl and stunnel4: the remote-Docker tests make certificates and expose the engine
#   through a TLS proxy that verifies clients; openssh-server and openssh-client for the
#   ssh:// test (an sshd of its own on 127.0.0.1, which needs /run/sshd);
# - podman: the Podman tests start its Docker-compatible API service on a socket of their
#   own (tests/podman_e2e.rs).
need=()
command -v dockerd >/dev/null || command -v docker >/dev/null || need+=(docker.io)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need+=(busybox-static)
command -v tc >/dev/null || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
{ command -v nsenter >/dev/null && command -v unshare >/dev/null; } || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
command -v python3 >/dev/null || need+=(python3)
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || need+=(prometheus)
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
command -v openssl >/dev/null || need+=(openssl)
command -v stunnel4 >/dev/null || need+=(stunnel4)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
{ command -v ssh >/dev/null && command -v ssh-keygen >/dev/null; } || need+=(openssh-client)
command -v podman >/dev/null || need+=(podman)
if [ "${#need[@]}" -gt 0 ]; then
    apt_install "${need[@]}"
fi

# sshd's privilege separation directory (made by its service, which does not run here).
[ -d /run/sshd ] || as_root mkdir -p /run/sshd

# The engine must answer: start it when it does not (no systemd in most CI containers).
if ! docker info >/dev/null 2>&1; then
    echo "install-test-deps: starting the Docker engine (log: /tmp/faultline-dockerd.log)"
    if command -v systemctl >/dev/null && systemctl start docker 2>/dev/null; then
        :
    else
        (as_root dockerd >/tmp/faultline-dockerd.log 2>&1 &)
    fi
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    if ! docker info >/dev/null 2>&1; then
        echo "install-test-deps: the Docker engine does not answer; see /tmp/faultline-dockerd.log" >&2
        exit 1
    fi
fi

# The test images, built locally; quiet when they exist.
if ! out=$(bash scripts/test-images.sh 2>&1); then
    echo "$out" >&2
    exit 1
fi
case "$out" in
    *"nothing to do"*) ;;
    *) echo "$out" ;;
esac
