#!/usr/bin/env bash
# Removes what provision.sh installed: the service, the releases, the configuration, the local broker's
# settings and certificates, the system user, and the data (gallery, queue, model slots) unless
# --keep-data. OS packages (ffmpeg, mosquitto, the camera stack) stay: other software may use them.
#   usage: uninstall.sh [--keep-data] [--dry-run] [--root DIR]
set -euo pipefail

keep_data=0 dry_run=0 root=""
while [ $# -gt 0 ]; do
  case "$1" in
    --keep-data) keep_data=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --root) root="$(realpath -m "$2")"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$dry_run" = 0 ] && [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
  echo "uninstall.sh: run as root (or --dry-run)" >&2
  exit 2
fi
run() { if [ "$dry_run" = 1 ]; then echo "  + $*"; else "$@"; fi; }

if [ -z "$root" ] && systemctl cat facegate >/dev/null 2>&1; then
  run systemctl disable --now facegate facegate-update.path
fi
run rm -rf "$root"/etc/systemd/system/facegate{.service,.service.d,-update.path,-update.service}
[ -n "$root" ] || run systemctl daemon-reload
run rm -rf "$root/opt/facegate"
if [ -f "$root/etc/mosquitto/conf.d/facegate.conf" ]; then
  run rm -f "$root/etc/mosquitto/conf.d/facegate.conf"
  [ -n "$root" ] || run systemctl restart mosquitto
fi
run rm -rf "$root/etc/facegate"
if [ "$keep_data" = 1 ]; then
  echo "uninstall.sh: kept $root/var/lib/facegate (gallery, queue, model slots)"
else
  run rm -rf "$root/var/lib/facegate"
fi
if [ -z "$root" ] && id facegate >/dev/null 2>&1; then
  # With the data kept, the user stays too, so its files keep a known owner.
  [ "$keep_data" = 1 ] || run userdel facegate
fi
echo "uninstall.sh: facegate removed$([ "$dry_run" = 1 ] && echo " (dry run)")"
