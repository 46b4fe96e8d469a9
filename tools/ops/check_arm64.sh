#!/usr/bin/env bash
# The box's own platform, checked from an x86-64 Debian machine, as root:
#
#   bash tools/ops/check_arm64.sh [ROOTFS]      # default ROOTFS: /var/tmp/edge-arm64 (kept for the next run)
#
# 1. builds an arm64 Debian 12 (the base of 64-bit Raspberry Pi OS) in ROOTFS with debootstrap, run through
#    qemu-user emulation (qemu-user-static, binfmt_misc);
# 2. copies this checkout's tracked files into it and installs edge there exactly as the README says
#    (`bash tools/setup.sh`: Debian packages and aarch64 wheels from PyPI, nothing built);
# 3. runs the README's demo there (`bash tools/demo.sh`), and the same demo here;
# 4. compares the two runs' detections: species, times and confidences must be equal.
#
# Not part of the test suite (it fetches a whole Debian system; 15-30 minutes). Under qemu-user 7.2,
# onnxruntime reads the host's x86 /proc/cpuinfo and crashes, so an Arm one (a Cortex-A72, as in a
# Raspberry Pi 4: no dot-product instructions) is bind-mounted over it inside the chroot.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "run as root (debootstrap, chroot and mounts need it)" >&2; exit 1; }
root=${1:-/var/tmp/edge-arm64}
checkout=$(pwd -P)

need=()
for pkg in debootstrap qemu-user-static binfmt-support; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "qemu-aarch64 is not registered with binfmt_misc" >&2; exit 1; }

if [ ! -x "$root/usr/bin/python3" ]; then
    debootstrap --arch=arm64 --include=python3,python3-venv,ca-certificates bookworm "$root" \
        http://deb.debian.org/debian
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The CAs this machine trusts beyond Debian's (a proxy's, on a network that inspects TLS) are trusted inside.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null
fi

cpuinfo=$(mktemp)
cat > "$cpuinfo" <<'EOF'
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

EOF
cleanup() {
    for mount in proc/cpuinfo proc sys dev; do umount "$root/$mount" 2>/dev/null || true; done
    rm -f "$cpuinfo"
}
trap cleanup EXIT
mount -t proc proc "$root/proc"
mount --bind "$cpuinfo" "$root/proc/cpuinfo"
mount --bind /sys "$root/sys"
mount --bind /dev "$root/dev"

rm -rf "$root/opt/edge"
mkdir -p "$root/opt/edge"
git -C "$checkout" ls-files -z | (cd "$checkout" && xargs -0 cp --parents -P -t "$root/opt/edge")
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    bash -c 'cd /opt/edge && uname -m && bash tools/demo.sh --quiet --out arm64-out && .venv/bin/edge models'

bash tools/demo.sh --quiet --out "$root/opt/edge/x86-out"
.venv/bin/python - "$root/opt/edge/x86-out/detections.jsonl" "$root/opt/edge/arm64-out/detections.jsonl" <<'EOF'
import json
import sys

x86, arm = ([json.loads(line) for line in open(path)] for path in sys.argv[1:])
fields = ("scientific_name", "start_s", "end_s", "confidence")
same = [tuple(r[f] for f in fields) for r in x86] == [tuple(r[f] for f in fields) for r in arm]
worst = max((abs(a["confidence"] - b["confidence"]) for a, b in zip(x86, arm)), default=0.0)
print(f"x86-64: {len(x86)} detections, arm64: {len(arm)}; identical: {same}; largest confidence difference {worst:g}")
sys.exit(0 if same else 1)
EOF
