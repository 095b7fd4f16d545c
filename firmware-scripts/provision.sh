#!/usr/bin/env bash
# Provisions a device from an offline release bundle (firmware-scripts/bundle.sh), as root, with no
# network: Raspberry Pi 4/5 on Raspberry Pi OS Bookworm 64-bit, Jetson Nano/Orin on JetPack (Ubuntu), or
# an x86-64 Debian box. Idempotent: run it again with a newer bundle to update (installed beside the
# running release, switched to, rolled back when it does not report ready in time; config, gallery and
# models are kept).
#   usage: provision.sh --bundle FILE [--board rpi4|rpi5|jetson-nano|jetson-orin|x86] [--dry-run]
#                       [--release-key FILE.pem] [--operator-key FILE.pem] [--broker local]
#                       [--root DIR] [--no-start]
#   --release-key   ed25519 public key (PEM) trusted for bundles and model updates (/etc/facegate/keys)
#   --operator-key  ed25519 public key (PEM) of the operator who signs MQTT commands (/etc/facegate)
#   --broker local  a mosquitto on this device with TLS (own CA, no anonymous access) for a standalone door
#   --root DIR      install below DIR, and point the written files there (tests, image building): no
#                   user, no systemctl
#   --dry-run       print every action and change nothing
# The board is detected from /proc/device-tree/model and /etc/os-release (FACEGATE_DT_MODEL and
# FACEGATE_OS_RELEASE name other files, for tests).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bundle="" board="" dry_run=0 release_key="" operator_key="" broker="" root="" start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle="$2"; shift 2 ;;
    --board) board="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --release-key) release_key="$2"; shift 2 ;;
    --operator-key) operator_key="$2"; shift 2 ;;
    --broker) broker="$2"; shift 2 ;;
    --root) root="$(realpath -m "$2")"; shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "provision.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$bundle" ] || { echo "provision.sh: --bundle FILE is required (build one with firmware-scripts/bundle.sh)" >&2; exit 2; }
[ -f "$bundle" ] || [ -d "$bundle" ] || { echo "provision.sh: bundle $bundle not found" >&2; exit 2; }
[ -z "$broker" ] || [ "$broker" = local ] || { echo "provision.sh: --broker takes only 'local'" >&2; exit 2; }
for key in "$release_key" "$operator_key"; do
  [ -z "$key" ] || grep -q 'BEGIN PUBLIC KEY' "$key" || { echo "provision.sh: $key is not a PEM public key" >&2; exit 2; }
done
if [ "$dry_run" = 0 ] && [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
  echo "provision.sh: run as root (or --dry-run to see the plan)" >&2
  exit 2
fi

app="$root/opt/facegate" etc="$root/etc/facegate" data="$root/var/lib/facegate"
unit_dir="$root/etc/systemd/system"

plan() { echo "- $*"; }
# Runs a command, or prints it under --dry-run.
run() {
  if [ "$dry_run" = 1 ]; then echo "  + $*"; else "$@"; fi
}
# Writes stdin to FILE (mode MODE) unless it exists and KEEP=keep; prints it under --dry-run.
write_file() {
  local file="$1" mode="$2" keep="${3:-}"
  if [ "$keep" = keep ] && [ -e "$file" ]; then echo "  = $file exists, kept"; cat >/dev/null; return; fi
  if [ "$dry_run" = 1 ]; then echo "  + write $file (mode $mode):"; sed 's/^/      /'; return; fi
  install -d "$(dirname "$file")"
  cat >"$file.tmp"
  chmod "$mode" "$file.tmp"
  mv "$file.tmp" "$file"
}

# --- board and OS ------------------------------------------------------------------------------------
model_file="${FACEGATE_DT_MODEL:-/proc/device-tree/model}"
os_file="${FACEGATE_OS_RELEASE:-/etc/os-release}"
model="$(tr -d '\0' <"$model_file" 2>/dev/null || true)"
os_id="$(sed -n 's/^ID=//p' "$os_file" 2>/dev/null | tr -d '"')"
os_codename="$(sed -n 's/^VERSION_CODENAME=//p' "$os_file" 2>/dev/null | tr -d '"')"
os_name="$(sed -n 's/^PRETTY_NAME=//p' "$os_file" 2>/dev/null | tr -d '"')"
if [ -z "$board" ]; then
  case "$model" in
    *"Raspberry Pi 5"*) board=rpi5 ;;
    *"Raspberry Pi 4"*) board=rpi4 ;;
    *Jetson*Orin*|*Orin*Jetson*) board=jetson-orin ;;
    *Jetson*Nano*|*Nano*Jetson*) board=jetson-nano ;;
    "") [ "$(uname -m)" = x86_64 ] && board=x86 ;;
  esac
  [ -n "$board" ] || { echo "provision.sh: cannot tell the board from \"$model\": give --board" >&2; exit 2; }
  how="detected from ${model:-the CPU architecture}"
else
  how="given with --board"
fi
case "$board" in
  rpi4|rpi5) arch=arm64 camera_pkgs=(rpicam-apps) family=pi
    { [ "$os_id" = debian ] || [ "$os_id" = raspbian ]; } && [ "$os_codename" = bookworm ] ||
      echo "provision.sh: warning: $board is supported on Raspberry Pi OS Bookworm 64-bit, this is ${os_name:-unknown}" >&2 ;;
  jetson-nano|jetson-orin) arch=arm64 camera_pkgs=(gstreamer1.0-tools) family=jetson
    [ "$os_id" = ubuntu ] ||
      echo "provision.sh: warning: $board is supported on JetPack (Ubuntu), this is ${os_name:-unknown}" >&2 ;;
  x86) arch=x64 camera_pkgs=(v4l-utils) family=x86 ;;
  *) echo "provision.sh: unknown board $board (rpi4, rpi5, jetson-nano, jetson-orin, x86)" >&2; exit 2 ;;
esac
updating=0
[ -L "$app/current" ] && updating=1

echo "facegate provisioning plan$([ "$dry_run" = 1 ] && echo " (dry run: nothing is changed)")"
plan "board: $board ($how), OS: ${os_name:-unknown}, bundle architecture needed: linux-$arch"
plan "bundle: $bundle"

# --- OS packages: ffmpeg and the camera stack come from the OS ------------------------------------------
pkgs=(ffmpeg "${camera_pkgs[@]}" openssl)
[ "$broker" = local ] && pkgs+=(mosquitto)
missing=()
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
plan "OS packages: ${pkgs[*]}$([ ${#missing[@]} -eq 0 ] && echo " (all installed)" || echo "; missing: ${missing[*]}")"
if [ ${#missing[@]} -gt 0 ]; then
  if [ -n "$root" ]; then
    echo "  = not installed under --root"
  else
    # From the OS's own package source (its cache or a local mirror): the bundle does not carry them.
    run apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi

# --- user and directories ------------------------------------------------------------------------------
plan "system user facegate in the video group; app in $app, config in $etc, data in $data"
if [ -n "$root" ]; then
  echo "  = no user under --root: files stay owned by $(id -un)"
elif ! id facegate >/dev/null 2>&1; then
  run useradd --system --user-group --home-dir /var/lib/facegate --shell /usr/sbin/nologin facegate
fi
[ -n "$root" ] || id -nG facegate 2>/dev/null | grep -qw video || run usermod -aG video facegate
run install -d -m 0755 "$app" "$app/releases" "$etc/keys"
run install -d -m 0750 "$data" "$data/offline-queue" "$data/release" "$data/backups"
[ -n "$root" ] || run chown facegate:facegate "$etc" "$data" "$data/offline-queue" "$data/release" "$data/backups"

# --- keys ----------------------------------------------------------------------------------------------
if [ -n "$release_key" ]; then
  plan "release key: $release_key -> $etc/keys/release.pem (trusted for bundles and model updates)"
  run install -m 0644 "$release_key" "$etc/keys/release.pem"
fi
# The operator's key goes into control.operatorKeysFile: privileged MQTT commands (enrol, config/set,
# updates, snapshots, ...) must be signed with its private key on any broker (docs/security.md).
if [ -n "$operator_key" ]; then
  plan "operator key: $operator_key -> $etc/operator-keys.pem (privileged MQTT commands must be signed with its private key)"
  run install -m 0644 "$operator_key" "$etc/operator-keys.pem"
else
  echo "  ! no operator key: nobody can enrol or change this device over MQTT until one is installed."
  echo "    On your own machine: facegate keys generate --out operator; then here:"
  echo "    $app/current/node/bin/node $app/current/bin/facegate.js keys add operator.pub --keys-file $etc/operator-keys.pem (docs/security.md)"
fi

# --- the release -------------------------------------------------------------------------------------
release_sh="$app/release.sh"
export FACEGATE_ROOT="$root"
if [ "$updating" = 1 ]; then
  plan "update: install the bundle beside $(basename "$(readlink "$app/current")"), switch current, restart, roll back unless ready within ${FACEGATE_PROBATION_SECONDS:-180} s"
else
  plan "install the bundle as $app/releases/<version>, current -> it"
fi
run install -m 0755 "$here/release.sh" "$release_sh"
if [ "$dry_run" = 1 ]; then
  echo "  + $release_sh $([ "$updating" = 1 ] && echo apply || echo install) $bundle   (verifies the signed manifest, SHA256SUMS and the architecture first)"
  [ "$updating" = 1 ] || echo "  + $release_sh switch <version>"
elif [ "$updating" = 1 ] && [ -z "$root" ] && [ "$start" = 1 ]; then
  "$release_sh" apply "$bundle"
  exit 0
else
  "$release_sh" switch "$("$release_sh" install "$bundle")"
fi

# --- broker ------------------------------------------------------------------------------------------
mqtt_lines=""
if [ "$broker" = local ]; then
  plan "local mosquitto with TLS on port 8883: own CA, passwords, no anonymous access"
  ca_dir="$etc/mqtt"
  mosq_conf="$root/etc/mosquitto/conf.d/facegate.conf"
  if [ -f "$ca_dir/ca.pem" ]; then
    echo "  = $ca_dir/ca.pem exists, kept (delete $ca_dir to make new certificates)"
  else
    run install -d -m 0755 "$ca_dir"
    run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=facegate local CA" -keyout "$ca_dir/ca.key" -out "$ca_dir/ca.pem"
    run openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=$(hostname)" -keyout "$ca_dir/broker.key" -out "$ca_dir/broker.csr"
    if [ "$dry_run" = 0 ]; then
      printf 'subjectAltName=DNS:%s,DNS:%s.local,DNS:localhost,IP:127.0.0.1\n' "$(hostname)" "$(hostname)" >"$ca_dir/san.ext"
    fi
    run openssl x509 -req -in "$ca_dir/broker.csr" -CA "$ca_dir/ca.pem" -CAkey "$ca_dir/ca.key" \
      -CAcreateserial -days 3650 -extfile "$ca_dir/san.ext" -out "$ca_dir/broker.pem"
    run chmod 0640 "$ca_dir/broker.key" "$ca_dir/ca.key"
    [ -n "$root" ] || run chgrp mosquitto "$ca_dir/broker.key"
  fi
  password_of() { openssl rand -base64 18 | tr -d '/+='; }
  if [ -f "$ca_dir/passwords" ]; then
    echo "  = $ca_dir/passwords exists, kept"
  else
    for user in facegate homeassistant; do
      if [ "$dry_run" = 1 ]; then pass="<random>"; else pass="$(password_of)"; fi
      run mosquitto_passwd -b -c "$ca_dir/passwd.$user" "$user" "$pass"
      [ "$dry_run" = 1 ] || echo "$user $pass" >>"$ca_dir/passwords"
    done
    if [ "$dry_run" = 0 ]; then
      cat "$ca_dir"/passwd.* >"$ca_dir/mosquitto.passwd"
      rm -f "$ca_dir"/passwd.*
      chmod 0600 "$ca_dir/passwords"
      [ -n "$root" ] || chown mosquitto "$ca_dir/mosquitto.passwd"
    fi
  fi
  write_file "$mosq_conf" 0644 <<EOF
# facegate's standalone broker (provision.sh --broker local): TLS only, passwords, no anonymous clients.
per_listener_settings false
allow_anonymous false
password_file $ca_dir/mosquitto.passwd
listener 8883
cafile $ca_dir/ca.pem
certfile $ca_dir/broker.pem
keyfile $ca_dir/broker.key
tls_version tlsv1.2
EOF
  facegate_pass="$(sed -n 's/^facegate //p' "$ca_dir/passwords" 2>/dev/null || echo '<random>')"
  mqtt_lines="mqtt: { url: mqtts://localhost:8883, username: facegate, tls: { ca: $ca_dir/ca.pem } }"
  [ -n "$root" ] || run systemctl restart mosquitto
  echo "  = Home Assistant: user homeassistant, password in $ca_dir/passwords, CA $ca_dir/ca.pem (docs/deploy.md)"
fi

# --- configuration -----------------------------------------------------------------------------------
# A PEM key as a YAML list item (the config holds keys, not file names).
pem_item() { echo "    - |"; sed 's/^/      /' "$1"; }
# The release's own models; model updates install newer ones in slots under dataDir.
key_lines=$'models:\n  dir: '"$app/current/models"$'\n'
if [ -n "$release_key" ]; then
  key_lines+=$'  update:\n    publicKeys:\n'"$(pem_item "$release_key" | sed 's/^/  /')"$'\n'
fi
key_lines+=$'control:\n  operatorKeysFile: '"$etc/operator-keys.pem"$'\n'
plan "configuration: $etc/config.yaml (kept when present), board profile $board in $etc/environment"
device_id="$(hostname | tr -c 'A-Za-z0-9_\n-' '-')"
write_file "$etc/config.yaml" 0640 keep <<EOF
# facegate device configuration: overrides configs/default.yaml and the $board profile (docs/config.md).
device: { id: $device_id, name: $(hostname) }
dataDir: $data
gallery: { path: $data/gallery.db, seedDir: null }
offlineQueue: { path: $data/offline-queue }
schedules: { backupDir: $data/backups }
$mqtt_lines
${key_lines}
EOF
[ -n "$root" ] || run chown facegate:facegate "$etc/config.yaml"
# systemd reads it as root; the broker password stays out of the config the runtime publishes.
write_file "$etc/environment" 0600 <<EOF
FACEGATE_BOARD=$board
$([ -n "$mqtt_lines" ] && echo "FACEGATE_MQTT__PASSWORD=$facegate_pass")
EOF

# --- service -----------------------------------------------------------------------------------------
plan "service: $unit_dir/facegate.service (Type=notify, watchdog, hardening)"
# Under --root the unit's paths point below the root too.
# facegate-update.path/.service install what app/update staged, as root (release.sh apply).
for unit in facegate.service facegate-update.path facegate-update.service; do
  sed "s#/opt/facegate#$app#g; s#/etc/facegate#$etc#g; s#/var/lib/facegate#$data#g" "$here/$unit" |
    write_file "$unit_dir/$unit" 0644
done
if [ "$family" = jetson ]; then
  # Argus hands CSI frames over through NVIDIA's memory and host1x nodes.
  write_file "$unit_dir/facegate.service.d/jetson.conf" 0644 <<EOF
[Service]
DeviceAllow=/dev/nvmap rw
DeviceAllow=/dev/nvhost-ctrl rw
DeviceAllow=/dev/nvhost-ctrl-gpu rw
DeviceAllow=/dev/nvhost-vic rw
DeviceAllow=char-nvidia-frontend rw
EOF
fi
if [ -n "$root" ] || [ "$start" = 0 ]; then
  echo "  = not started$([ -n "$root" ] && echo " under --root")"
else
  run systemctl daemon-reload
  run systemctl enable facegate facegate-update.path
  run systemctl start facegate-update.path
  run systemctl restart facegate
fi
echo "facegate provisioned for $board$([ "$dry_run" = 1 ] && echo " (dry run)"): systemctl status facegate; facegate doctor: $app/current/node/bin/node $app/current/bin/facegate.js doctor --config $etc/config.yaml"
