#!/usr/bin/env bash
# Releases on a device: /opt/facegate/releases/<version> beside each other, `current` pointing at the one
# that runs. A new release is verified (signed manifest, SHA256SUMS), installed beside the others and
# switched to on probation: the runtime removes the probation marker once its first camera delivers frames
# (READY=1); until then every start of the service runs `probation` first (ExecStartPre), which switches back
# to the previous release once the new one has had MAX_STARTS starts or PROBATION_SECONDS without getting
# there. Config (/etc/facegate), gallery, queue and model slots (/var/lib/facegate) are never touched.
#   usage: release.sh verify BUNDLE | install BUNDLE (prints its version) | switch VERSION | probation | rollback | status
#          release.sh apply BUNDLE      install, switch, restart the service and wait for it to be healthy
# Environment: FACEGATE_ROOT (a prefix for every path, for tests; default /), FACEGATE_ALLOW_UNSIGNED=1,
# FACEGATE_PROBATION_SECONDS (default 180), FACEGATE_MAX_STARTS (default 3).
set -euo pipefail

root="${FACEGATE_ROOT:-}"
root="${root%/}"
app="$root/opt/facegate"
keys="$root/etc/facegate/keys"
state="$root/var/lib/facegate/release"
pending="$state/pending"
probation="${FACEGATE_PROBATION_SECONDS:-180}"
max_starts="${FACEGATE_MAX_STARTS:-3}"

say() { echo "facegate-release: $*" >&2; }
die() { say "$*"; exit 1; }

machine_arch() {
  case "$(uname -m)" in
    aarch64|arm64) echo arm64 ;;
    x86_64) echo x64 ;;
    *) uname -m ;;
  esac
}

# Unpacks BUNDLE (a .tar.xz or an unpacked directory) into a fresh directory below $app/releases and checks
# it; prints that directory, whose parent is the temporary directory the caller removes.
unpack_verified() {
  local bundle="$1" tmp dir manifest
  mkdir -p "$app/releases"
  tmp="$(mktemp -d "$app/releases/.incoming.XXXXXX")"
  if [ -d "$bundle" ]; then
    dir="$tmp/bundle"
    mkdir "$dir"
    cp -a "$bundle/." "$dir/"
  else
    tar -xJf "$bundle" -C "$tmp" || { rm -rf "$tmp"; die "$bundle is not a facegate bundle (.tar.xz)"; }
    dir="$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'facegate-*' | head -n1)"
    [ -n "$dir" ] || { rm -rf "$tmp"; die "$bundle holds no facegate-<version>/ directory"; }
  fi
  manifest="$dir/bundle-manifest.json"
  [ -f "$manifest" ] || { rm -rf "$tmp"; die "$bundle has no bundle-manifest.json"; }
  if ! check_signature "$dir"; then rm -rf "$tmp"; exit 1; fi
  [ "$(sha256sum "$dir/SHA256SUMS" | cut -d' ' -f1)" = "$(field sha256sums "$manifest")" ] ||
    { rm -rf "$tmp"; die "SHA256SUMS does not match the signed manifest"; }
  (cd "$dir" && sha256sum --quiet --strict -c SHA256SUMS) >&2 ||
    { rm -rf "$tmp"; die "files of $bundle do not match SHA256SUMS (damaged or altered)"; }
  [ "$(field arch "$manifest")" = "$(machine_arch)" ] ||
    { rm -rf "$tmp"; die "$bundle is for $(field arch "$manifest"), this machine is $(machine_arch)"; }
  echo "$dir"
}

field() { sed -n "s/^ *\"$1\": \"\\([^\"]*\\)\".*/\\1/p" "$2"; }

# The manifest must carry an ed25519 signature by one of the keys in /etc/facegate/keys.
check_signature() {
  local dir="$1" key
  if [ ! -f "$dir/bundle-manifest.sig" ]; then
    [ "${FACEGATE_ALLOW_UNSIGNED:-0}" = 1 ] && { say "warning: installing an unsigned bundle"; return 0; }
    say "the bundle is not signed (build it with bundle.sh --sign-key, or set FACEGATE_ALLOW_UNSIGNED=1)"
    return 1
  fi
  for key in "$keys"/*.pem; do
    [ -f "$key" ] || continue
    if openssl pkeyutl -verify -pubin -inkey "$key" -rawin -in "$dir/bundle-manifest.json" \
      -sigfile "$dir/bundle-manifest.sig" >/dev/null 2>&1; then
      say "signature by $(basename "$key") verified"
      return 0
    fi
  done
  say "the bundle's signature matches no key in $keys (add the release public key there)"
  return 1
}

current_version() { basename "$(readlink "$app/current" 2>/dev/null || echo none)"; }

# Points `current` at releases/VERSION in one rename, so a power cut leaves the old or the new link.
point_current() {
  ln -sfn "releases/$1" "$app/current.new"
  mv -T "$app/current.new" "$app/current"
}

cmd_install() {
  local dir version
  dir="$(unpack_verified "$1")"
  version="$(field version "$dir/bundle-manifest.json")"
  if [ -d "$app/releases/$version" ]; then
    if cmp -s "$dir/SHA256SUMS" "$app/releases/$version/SHA256SUMS"; then
      say "release $version is already installed"
      rm -rf "${dir%/*}"
      echo "$version"
      return 0
    fi
    [ "$version" != "$(current_version)" ] || die "release $version is running and differs from $1: give the new one another version"
    rm -rf "$app/releases/$version"
  fi
  mv "$dir" "$app/releases/$version"
  rm -rf "${dir%/*}"
  say "installed release $version in $app/releases/$version"
  echo "$version"
}

cmd_switch() {
  local next="$1" previous
  [ -d "$app/releases/$next" ] || die "release $next is not installed"
  previous="$(current_version)"
  [ "$previous" != "$next" ] || { say "release $next is already current"; return 0; }
  mkdir -p "$state"
  if [ "$previous" != none ]; then
    printf 'previous=%s\nnext=%s\nsince=%s\nstarts=0\n' "$previous" "$next" "$(date +%s)" >"$pending.tmp"
    mv "$pending.tmp" "$pending"
  fi
  point_current "$next"
  say "current: $previous -> $next$([ "$previous" = none ] || echo " (on probation until it reports ready)")"
}

pending_value() { sed -n "s/^$1=//p" "$pending"; }

cmd_rollback() {
  local previous="${1:-}" reason="${2:-asked to}"
  if [ -z "$previous" ]; then
    [ -f "$pending" ] || die "no release on probation: nothing to roll back to (see release.sh status)"
    previous="$(pending_value previous)"
  fi
  [ -d "$app/releases/$previous" ] || die "previous release $previous is gone"
  local failed
  failed="$(current_version)"
  point_current "$previous"
  rm -f "$pending"
  printf '%s rolled back from %s to %s: %s\n' "$(date -u +%FT%TZ)" "$failed" "$previous" "$reason" >>"$state/history"
  say "rolled back from $failed to $previous: $reason"
}

# ExecStartPre: counts the starts of a release on probation and rolls it back once it had its chances.
cmd_probation() {
  [ -f "$pending" ] || return 0
  local next starts since age
  next="$(pending_value next)" starts="$(pending_value starts)" since="$(pending_value since)"
  [ "$(current_version)" = "$next" ] || { rm -f "$pending"; return 0; }
  starts=$((starts + 1)) age=$(($(date +%s) - since))
  if [ "$starts" -gt "$max_starts" ] || [ "$age" -gt "$probation" ]; then
    cmd_rollback "$(pending_value previous)" "not ready after $((starts - 1)) start(s) in ${age} s"
    return 0
  fi
  sed -i "s/^starts=.*/starts=$starts/" "$pending"
  say "release $next on probation: start $starts of $max_starts"
}

cmd_status() {
  echo "current: $(current_version)"
  echo "installed: $(find "$app/releases" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f ' 2>/dev/null)"
  if [ -f "$pending" ]; then echo "on probation: $(tr '\n' ' ' <"$pending")"; else echo "on probation: none"; fi
  [ ! -f "$state/history" ] || tail -n 3 "$state/history"
}

# install + switch + restart, then wait for READY (the marker gone) or roll back.
cmd_apply() {
  local version deadline
  version="$(cmd_install "$1")"
  cmd_switch "$version"
  [ -f "$pending" ] || { systemctl restart facegate; return 0; }
  systemctl restart facegate || true
  deadline=$(($(date +%s) + probation))
  while [ -f "$pending" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 2; done
  if [ -f "$pending" ]; then
    cmd_rollback "$(pending_value previous)" "not ready within ${probation} s"
    systemctl restart facegate
    return 1
  fi
  [ "$(current_version)" = "$version" ] || die "release $version was rolled back (see $state/history)"
  say "release $version is running and ready"
}

case "${1:-}" in
  verify) [ $# -eq 2 ] || die "usage: release.sh verify BUNDLE"
    dir="$(unpack_verified "$2")"; say "$2: $(field version "$dir/bundle-manifest.json") for $(field arch "$dir/bundle-manifest.json") is intact"
    rm -rf "${dir%/*}" ;;
  install) [ $# -eq 2 ] || die "usage: release.sh install BUNDLE"; cmd_install "$2" ;;
  switch) [ $# -eq 2 ] || die "usage: release.sh switch VERSION"; cmd_switch "$2" ;;
  probation) cmd_probation ;;
  rollback) cmd_rollback ;;
  status) cmd_status ;;
  apply) [ $# -eq 2 ] || die "usage: release.sh apply BUNDLE"; cmd_apply "$2" ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
