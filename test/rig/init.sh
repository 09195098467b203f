#!/bin/sh
# /init of the gorb test rig (busybox sh, PID 1 inside the qemu guest).
# Sets up the kernel side IPVS tests need, runs /rig/cmd.sh in /gorb, reports its exit code on the serial console
# as "GORB_RIG_EXIT=<rc>" and powers off. Any setup failure prints "GORB_RIG_SETUP_FAILED: <what>" and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

fail() {
  echo "GORB_RIG_SETUP_FAILED: $*"
  poweroff -f
  sleep 5
  exit 1
}

step() {
  # step "<what>" cmd args...: run a setup command, failing the rig (with its output) when it fails.
  what=$1
  shift
  out=$("$@" 2>&1) || fail "$what: $out"
}

step "mount /proc" mount -t proc proc /proc
step "mount /sys" mount -t sysfs sysfs /sys
step "mount /dev" mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
step "mount /dev/pts" mount -t devpts devpts /dev/pts
step "mount /dev/shm" mount -t tmpfs -o mode=1777 tmpfs /dev/shm
step "mount /tmp" mount -t tmpfs -o mode=1777 tmpfs /tmp
step "mount /run" mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/netns
# iproute2 bind-mounts namespace files under /run/netns; it needs a mount point it can make shared.
step "mount /run/netns" mount -t tmpfs -o mode=755 tmpfs /run/netns

echo "GORB_RIG_BOOTED kernel=$(uname -r) uptime=$(cut -d" " -f1 /proc/uptime)s"

# IPVS, every scheduler, conntrack and veth. Other shipped modules (tunnels, ip_vs_ftp, ip_vs_pe_sip, virtio) stay
# unloaded so the kernel looks like a plain host; tests modprobe them, and the kernel autoloads on demand.
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh ip_vs_sed ip_vs_nq \
  ip_vs_fo ip_vs_ovf ip_vs_mh nf_conntrack veth; do
  step "modprobe $m" modprobe "$m"
done
[ -e /proc/net/ip_vs ] || fail "/proc/net/ip_vs missing after modprobe ip_vs"

step "lo up" /usr/sbin/ip link set lo up
step "sysctl ip_forward" sysctl -w net.ipv4.ip_forward=1
step "sysctl vs.conntrack" sysctl -w net.ipv4.vs.conntrack=1
hostname gorb-rig

if [ -e /rig/net ]; then
  # The host forwards TCP ports to us over qemu's user network (virtio-net, 10.0.2.0/24; forwarded connections come
  # from 10.0.2.2). No default route: the guest answers the host on the /24 and reaches nothing beyond it.
  for m in virtio_pci virtio_net; do step "modprobe $m" modprobe "$m"; done
  i=0
  while [ ! -e /sys/class/net/eth0 ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  [ -e /sys/class/net/eth0 ] || fail "eth0 did not appear after modprobe virtio_net"
  step "eth0 up" /usr/sbin/ip link set eth0 up
  step "eth0 address" /usr/sbin/ip addr add 10.0.2.15/24 dev eth0
fi

[ -f /rig/cmd.sh ] || fail "/rig/cmd.sh missing from the initramfs"
cd /gorb || fail "cd /gorb"
export HOME=/tmp GORB_RIG=1 TMPDIR=/tmp NO_COLOR=1 TERM=dumb
echo "GORB_RIG_READY uptime=$(cut -d" " -f1 /proc/uptime)s"
sh /rig/cmd.sh </dev/null
rc=$?
sync
echo "GORB_RIG_EXIT=$rc"
poweroff -f
sleep 5
