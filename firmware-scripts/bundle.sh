#!/usr/bin/env bash
# Builds an offline release bundle for a board, on an x86-64 Debian machine with this checkout's
# dependencies installed (npm ci) and the models built (npm run models):
#   facegate-<version>-linux-<arch>.tar.xz holding facegate-<version>/ with the runtime, production
#   node_modules for the target (onnxruntime-node's and sharp's prebuilt binaries; better-sqlite3,
#   unix-dgram and the native kernels compiled here, cross-compiled with g++-aarch64-linux-gnu for arm64),
#   Node.js for the target (the npm package node-linux-<arch>), the built models, the board profiles,
#   SHA256SUMS, and bundle-manifest.json signed with an ed25519 key (bundle-manifest.sig).
# Nothing is downloaded at install time; building needs the npm registry or its local cache only.
#   usage: bundle.sh --arch arm64|x64 [--out DIR] [--sign-key KEY.pem] [--version V] [--work DIR]
#          bundle.sh --pack DIR [--out DIR] [--sign-key KEY.pem]   (re-checksum, sign and pack a staged tree)
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
arch="" out="$src/dist" sign_key="" version="" work="" pack_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --sign-key) sign_key="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --pack) pack_dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bundle.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

step() { echo "bundle: $*" >&2; }

# Writes SHA256SUMS, the manifest and its signature, then the archive.
pack() {
  local dir="$1" name arch_of version_of node_of sums
  name="$(basename "$dir")"
  arch_of="$(cat "$dir/.arch")" version_of="$(node -p "require('$dir/package.json').version")"
  node_of="$("$dir/node/bin/node" --version 2>/dev/null || file -b "$dir/node/bin/node" | cut -d, -f1-2)"
  step "checksums of $(find "$dir" -type f | wc -l) files"
  rm -f "$dir/SHA256SUMS" "$dir/bundle-manifest.json" "$dir/bundle-manifest.sig"
  (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum >"$dir.sums")
  mv "$dir.sums" "$dir/SHA256SUMS"
  sums="$(sha256sum "$dir/SHA256SUMS" | cut -d' ' -f1)"
  cat >"$dir/bundle-manifest.json" <<EOF
{
  "name": "facegate",
  "version": "$version_of",
  "arch": "$arch_of",
  "node": "$node_of",
  "created": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "sha256sums": "$sums"
}
EOF
  if [ -n "$sign_key" ]; then
    # ed25519 over the manifest's bytes: the same keys as model updates (models.update.publicKeys).
    openssl pkeyutl -sign -inkey "$sign_key" -rawin -in "$dir/bundle-manifest.json" -out "$dir/bundle-manifest.sig"
    step "signed bundle-manifest.json"
  else
    step "no --sign-key: the bundle is unsigned (provision.sh and app/update refuse it unless told otherwise)"
  fi
  mkdir -p "$out"
  local archive="$out/$name-linux-$arch_of.tar.xz"
  step "packing $archive"
  tar -C "$(dirname "$dir")" -cf - "$name" | xz -T0 -6 >"$archive.tmp"
  mv "$archive.tmp" "$archive"
  step "$(du -h "$archive" | cut -f1) $archive"
  echo "$archive"
}

if [ -n "$pack_dir" ]; then
  pack "$(cd "$pack_dir" && pwd)"
  exit 0
fi

case "$arch" in
  arm64) gnu=aarch64-linux-gnu; file_arch="ARM aarch64" ;;
  x64) gnu=x86_64-linux-gnu; file_arch="x86-64" ;;
  *) echo "bundle.sh: --arch arm64|x64 is required" >&2; exit 2 ;;
esac
command -v "$gnu-g++" >/dev/null || { echo "bundle.sh: $gnu-g++ not found (apt-get install g++-${gnu//_/-})" >&2; exit 1; }
[ -n "$version" ] || version="$(node -p "require('$src/package.json').version")"
node_version="$(node --version | tr -d v)"
[ -n "$work" ] || work="$(mktemp -d)"
stage="$work/facegate-$version"
cache="${FACEGATE_BUNDLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/facegate-bundle}"
rm -rf "$stage"
mkdir -p "$stage" "$cache"

step "sources ($version, linux-$arch)"
cp -a "$src/bin" "$src/runtime" "$src/configs" "$src/package.json" "$src/package-lock.json" "$stage/"
mkdir -p "$stage/firmware-scripts" "$stage/kernels" "$stage/assets"
cp -a "$src"/firmware-scripts/{provision.sh,uninstall.sh,release.sh,system-deps.sh} "$src"/firmware-scripts/facegate*.{service,path} \
  "$stage/firmware-scripts/"
# The demo (clip and people) runs with no config at all, and gives doctor and enroll a photo to try.
cp -a "$src/assets/demo" "$stage/assets/"
cp -a "$src"/kernels/{binding.gyp,binding,include,src} "$stage/kernels/"
echo "$arch" >"$stage/.arch"
sed -i "s/\"version\": \"[^\"]*\"/\"version\": \"$version\"/" "$stage/package.json"

step "compiling the runtime to JavaScript"
# The device runs plain JavaScript: no TypeScript loader, whose esbuild would be one more native program
# (and a child process) to carry for the target. Types were checked by npm run lint.
(cd "$src" && find runtime -name '*.ts' ! -name '*.test.ts' -print0 |
  xargs -0 node node_modules/typescript/bin/tsc --noCheck --rewriteRelativeImportExtensions \
    --allowImportingTsExtensions --target ES2022 --module NodeNext --moduleResolution NodeNext \
    --esModuleInterop --skipLibCheck --resolveJsonModule --types node --rootDir . --outDir "$stage")
find "$stage/runtime" -name '*.ts' -delete
cat >"$stage/bin/facegate.js" <<'EOF'
#!/usr/bin/env node
// The release runs the runtime compiled by bundle.sh.
await import('../runtime/cli/main.js');
EOF

step "models"
if ! ls "$src"/models/*.int8.json >/dev/null 2>&1; then
  (cd "$src" && npm run models)
fi
mkdir -p "$stage/models"
cp "$src"/models/*.onnx "$src"/models/*.json "$stage/models/"

step "Node.js $node_version for linux-$arch (npm package node-linux-$arch)"
node_pkg="$cache/node-linux-$arch-$node_version.tgz"
if [ ! -f "$node_pkg" ]; then
  (cd "$cache" && npm pack --silent "node-linux-$arch@$node_version" >/dev/null)
fi
node_tree="$cache/node-linux-$arch-$node_version"
if [ ! -x "$node_tree/bin/node" ]; then
  mkdir -p "$node_tree"
  tar -xzf "$node_pkg" -C "$node_tree" --strip-components=1
fi
mkdir -p "$stage/node/bin"
cp "$node_tree/bin/node" "$stage/node/bin/node"
cp "$node_tree/LICENSE" "$stage/node/LICENSE"

step "production dependencies for linux-$arch"
# --cpu/--os pick the target's optional packages (sharp's @img/*, esbuild's @esbuild/*); no install
# scripts run here, since they would build for this machine. The lock file pins every version.
(cd "$stage" && npm ci --omit=dev --ignore-scripts --os=linux --cpu="$arch" --prefer-offline \
  --no-audit --no-fund --loglevel=error)

step "native addons for linux-$arch against Node $node_version's headers"
gyp="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp="$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
# Addons are compiled once per source, target and Node version and kept in the cache: the same inputs
# give the same .node files, and compiling sqlite for arm64 takes minutes.
build_addon() {
  local dir="$1" key="$2" kept="$cache/addons/$arch-node$node_version-$2" log
  log="$work/gyp-$(basename "$dir").log"
  if ! ls "$kept"/*.node >/dev/null 2>&1; then
    (cd "$dir" && CC="$gnu-gcc" CXX="$gnu-g++" LINK="$gnu-g++" AR="$gnu-ar" \
      node "$gyp" rebuild --release --arch="$arch" --nodedir="$node_tree" --jobs="${FACEGATE_BUILD_JOBS:-max}" \
      --loglevel=error >"$log" 2>&1) ||
      { tail -30 "$log" >&2; echo "bundle.sh: building $dir failed" >&2; exit 1; }
    mkdir -p "$kept.tmp"
    cp "$dir"/build/Release/*.node "$kept.tmp/"
    rm -rf "$kept"
    mv "$kept.tmp" "$kept"
  else
    step "  $key: compiled before ($kept)"
  fi
  rm -rf "$dir/build"
  mkdir -p "$dir/build/Release"
  cp "$kept"/*.node "$dir/build/Release/"
}
pkg_version() { node -p "require('$stage/node_modules/$1/package.json').version"; }
build_addon "$stage/node_modules/better-sqlite3" "better-sqlite3-$(pkg_version better-sqlite3)"
build_addon "$stage/node_modules/unix-dgram" "unix-dgram-$(pkg_version unix-dgram)"
# The kernels build needs node-addon-api's headers, which node_modules now has.
kernels_hash="$(cd "$src/kernels" && find binding.gyp binding include src -type f -print0 | LC_ALL=C sort -z |
  xargs -0 sha256sum | sha256sum | cut -c1-16)"
build_addon "$stage/kernels" "kernels-$kernels_hash"

step "pruning what the target does not run"
rm -f "$stage/node_modules/better-sqlite3/build/Release/test_extension.node"
rm -rf "$stage/node_modules/better-sqlite3/deps" "$stage/node_modules/better-sqlite3/src" \
  "$stage/kernels/src" "$stage/kernels/include" "$stage/kernels/binding"
find "$stage/node_modules/onnxruntime-node/bin/napi-v6" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
find "$stage/node_modules/onnxruntime-node/bin/napi-v6/linux" -mindepth 1 -maxdepth 1 ! -name "$arch" -exec rm -rf {} +
# tsx (and its esbuild) load TypeScript in a checkout; the release is JavaScript.
rm -rf "$stage/node_modules/"{tsx,esbuild,@esbuild} "$stage/node_modules/.package-lock.json"

step "checking every native file is $file_arch"
wrong="$(find "$stage" -type f \( -name '*.node' -o -name '*.so' -o -name '*.so.*' -o -path '*/bin/node' \) \
  -exec file {} + | grep ELF | grep -v "$file_arch" || true)"
[ -z "$wrong" ] || { echo "bundle.sh: native files for another architecture:" >&2; echo "$wrong" >&2; exit 1; }

pack "$stage"
