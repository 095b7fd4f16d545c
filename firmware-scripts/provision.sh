#!/usr/bin/env bash
# Provisions a device (Raspberry Pi OS / Debian / Jetson Ubuntu, as root) from a facegate checkout:
# system packages, dependencies and native kernels, the models, a config for the board, the service.
#   usage: provision.sh BOARD [--operator-key PUBLIC.pem]   (rpi4 | rpi5 | jetson-nano | jetson-orin | x86)
set -euo pipefail

board="${1:?usage: provision.sh rpi4|rpi5|jetson-nano|jetson-orin|x86 [--operator-key PUBLIC.pem]}"
# --- operator key (issue 9, docs/security.md): privileged MQTT commands must be signed with it ---
operator_key=""
if [ "${2:-}" = "--operator-key" ]; then operator_key="$(realpath "${3:?--operator-key needs a PUBLIC.pem}")"; fi
src="$(cd "$(dirname "$0")/.." && pwd)"
dest=/opt/facegate

[ -f "$src/configs/boards/$board.yaml" ] || { echo "unknown board: $board" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 2; }

bash "$src/firmware-scripts/system-deps.sh" runtime
mkdir -p "$dest" /etc/facegate /var/lib/facegate
cp -a "$src/." "$dest/"
cd "$dest"
npm ci
# Models are built once here (they need the npm packages' weights and the calibration data).
[ -d models ] || npm run models

if [ ! -f /etc/facegate/config.yaml ]; then
  {
    echo "# facegate device configuration: overrides configs/default.yaml (see docs/config.md)."
    echo "device: { id: $(hostname | tr -c 'A-Za-z0-9_\n-' '-'), name: $(hostname) }"
    echo "dataDir: /var/lib/facegate"
    echo "gallery: { path: /var/lib/facegate/gallery.db, seedDir: null }"
    echo "offlineQueue: { path: /var/lib/facegate/offline-queue }"
    echo "models: { dir: $dest/models }"
  } > /etc/facegate/config.yaml
fi
echo "FACEGATE_BOARD=$board" > /etc/facegate/environment
# --- operator key (issue 9): installed into control.operatorKeysFile, or how to do it later ---
if [ -n "$operator_key" ]; then node "$dest/bin/facegate.js" keys add "$operator_key" --keys-file /etc/facegate/operator-keys.pem
else echo "no operator key: run 'facegate keys generate --out operator' on your own machine, then here: node $dest/bin/facegate.js keys add operator.pub --keys-file /etc/facegate/operator-keys.pem (docs/security.md)"; fi

install -m 0644 "$dest/firmware-scripts/facegate.service" /etc/systemd/system/facegate.service
sed -i '/^\[Service\]/a EnvironmentFile=/etc/facegate/environment' /etc/systemd/system/facegate.service
systemctl daemon-reload
systemctl enable --now facegate
echo "facegate provisioned for $board: systemctl status facegate"
