#!/usr/bin/env bash
# Installs what the real-kernel test rig (test/rig/), the browser test and the packaging test need on a Debian host:
# every package of .ci/debian-packages (the list, with what each is for, is kept there). Idempotent and
# non-interactive. `npm test` and `npm run sandbox` install theirs by themselves (scripts/prepare.mjs).
# The kernel itself is fetched by test/rig/kernel.ts with `apt-get download` (needs the apt lists updated here).
set -euo pipefail

mapfile -t packages < <(awk '!/^[[:space:]]*(#|$)/ { print $1 }' "$(dirname "$0")/debian-packages")

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"

# Fail here, not in the middle of a test run, if anything is still missing.
for tool in qemu-system-x86_64 busybox ipvsadm depmod chromium bird etcd keepalived systemd-analyze zsh fish; do
  command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 ||
    { echo "rig-deps: $tool still missing after install" >&2; exit 1; }
done
[ -x /usr/sbin/ip ] || { echo "rig-deps: /usr/sbin/ip missing after install" >&2; exit 1; }
apt-cache show --no-all-versions linux-image-cloud-amd64 >/dev/null ||
  { echo "rig-deps: apt knows no linux-image-cloud-amd64 (apt sources?)" >&2; exit 1; }
echo "rig-deps: ok (${packages[*]})"
