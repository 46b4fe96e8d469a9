#!/usr/bin/env bash
# Install edge as a systemd service on a Debian / Raspberry Pi OS box, from the checkout this script is in:
# As root:
#   bash tools/ops/install_service.sh                 # install or upgrade, enable, and (re)start
#   bash tools/ops/install_service.sh --no-start      # install or upgrade and enable; start nothing
#
# What it does, each step safe to repeat:
#   - the system user and group `edge` (no login, home /var/lib/edge), member of `audio` for the microphone;
#   - the code in /opt/edge, owned by root so that the service cannot change it: the checkout is copied there
#     with rsync (its .git, .venv and outputs left out), or used where it is if it already is /opt/edge;
#   - /opt/edge/.venv, by tools/setup.sh (system packages, virtualenv, edge);
#   - /etc/edge/edge.toml from config/edge.toml, only if there is none yet: a box's settings are never
#     overwritten;
#   - /srv/edge, the recorder inbox the unit expects, if missing (adjust the unit's ReadWritePaths= when
#     edge.toml watches other folders: `systemctl edit edge`);
#   - /etc/systemd/system/edge.service from systemd/edge.service, replaced on every run (local changes go in
#     drop-ins, which are kept); then daemon-reload, enable, and restart unless --no-start.
# Outside a running systemd (an SD-card image being prepared in a chroot) the service is enabled only.
set -euo pipefail

start=yes
for arg in "$@"; do
    case "$arg" in
        --no-start) start=no ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo -i, or su -): bash $0 $*" >&2; exit 1; }

umask 022
source_dir=$(cd "$(dirname "$0")/../.." && pwd -P)
prefix=/opt/edge
for file in config/edge.toml systemd/edge.service tools/setup.sh; do
    [ -f "$source_dir/$file" ] || { echo "missing $source_dir/$file: run this from an edge checkout" >&2; exit 1; }
done

need=()
command -v rsync >/dev/null || need+=(rsync)
command -v useradd >/dev/null || need+=(passwd)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

echo "== user edge"
getent group audio >/dev/null || groupadd --system audio
if ! getent passwd edge >/dev/null; then
    useradd --system --user-group --groups audio --home-dir /var/lib/edge --no-create-home \
        --shell /usr/sbin/nologin --comment "edge wildlife sound detection" edge
fi
usermod --append --groups audio edge

echo "== code in $prefix"
mkdir -p "$prefix"
if [ "$source_dir" != "$(cd "$prefix" && pwd -P)" ]; then
    # --delete drops files removed upstream; the excluded folders are neither copied nor deleted, so the
    # virtualenv survives an upgrade and setup.sh only brings it up to date.
    rsync -a --delete --chown=root:root \
        --exclude=/.git/ --exclude=/.venv/ --exclude=/edge-out/ --exclude=__pycache__/ --exclude=.pytest_cache/ \
        "$source_dir/" "$prefix/"
fi
bash "$prefix/tools/setup.sh"
# The service sees /opt read-only and could not cache bytecode of its own: compile it now.
"$prefix/.venv/bin/python" -m compileall -q "$prefix/edge"

echo "== configuration"
install -d -m 0755 /etc/edge
if [ ! -e /etc/edge/edge.toml ]; then
    # Readable by the service's group only: the file may hold a broker password.
    install -m 0640 -o root -g edge "$prefix/config/edge.toml" /etc/edge/edge.toml
    echo "installed /etc/edge/edge.toml: review it, then: systemctl restart edge"
else
    echo "kept the existing /etc/edge/edge.toml"
fi
[ -d /srv/edge ] || install -d -m 0755 -o edge -g edge /srv/edge

echo "== systemd unit"
install -m 0644 "$prefix/systemd/edge.service" /etc/systemd/system/edge.service
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable edge.service
    if [ "$start" = yes ]; then
        systemctl restart edge.service
        systemctl --no-pager status edge.service || true
    fi
else
    systemctl enable edge.service
    echo "systemd is not running here: edge is enabled and starts at the next boot"
fi
