#!/usr/bin/env bash
# Makes sure the Debian tools facegate drives are present (ffmpeg for cameras and video, mosquitto for
# the test broker, openssl for test certificates). As root on Debian/Ubuntu it installs what is
# missing; otherwise it names the packages and fails.
#   usage: system-deps.sh runtime|test
set -euo pipefail

want=(ffmpeg)
if [ "${1:-runtime}" = "test" ]; then
  want+=(mosquitto mosquitto-clients openssl gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "facegate: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "facegate: missing system packages: ${missing[*]} (install them with: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
