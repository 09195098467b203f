#!/usr/bin/env bash
# Installs what the real-kernel test rig (test/rig/) needs on a Debian host. Idempotent and non-interactive.
#   qemu-system-x86  software-emulated guest (-accel tcg -cpu max)
#   busybox-static   the guest's shell and applets (httpd, nc, modprobe, ...)
#   iproute2         /usr/sbin/ip with netns support, copied into the guest
#   ipvsadm          independent view of the kernel's IPVS table, copied into the guest
#   bird2            BIRD 2 (`bird`), the BGP speaker and router of test/kernel/bgp.test.ts, copied into the guest
#   libnl-3-200 libnl-genl-3-200   libraries ipvsadm and gorb's ffi load (by soname)
#   kmod             depmod, to index the trimmed kernel module tree
#   chromium         the browser test of the web UI (test/browser/), driven by playwright-core (no browser download)
#   etcd-server      etcd 3.4, the shared store of the fleet tests (host store-contract test; copied into the guest)
#   keepalived       the checker bench/checks.ts compares gorb's health checks with (copied into the guest per run)
# The kernel itself is fetched by test/rig/kernel.ts with `apt-get download` (needs the apt lists updated here).
set -euo pipefail

packages=(qemu-system-x86 busybox-static iproute2 ipvsadm libnl-3-200 libnl-genl-3-200 kmod chromium bird2 etcd-server keepalived)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"

# Fail here, not in the middle of a test run, if anything is still missing.
for tool in qemu-system-x86_64 busybox ipvsadm depmod chromium bird etcd keepalived; do
  command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 ||
    { echo "rig-deps: $tool still missing after install" >&2; exit 1; }
done
[ -x /usr/sbin/ip ] || { echo "rig-deps: /usr/sbin/ip missing after install" >&2; exit 1; }
apt-cache show --no-all-versions linux-image-cloud-amd64 >/dev/null ||
  { echo "rig-deps: apt knows no linux-image-cloud-amd64 (apt sources?)" >&2; exit 1; }
echo "rig-deps: ok (${packages[*]})"
