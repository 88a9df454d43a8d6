#!/usr/bin/env bash
# Set up a Debian/Ubuntu machine for shine-webgpu: the software WebGPU adapters (Mesa llvmpipe for
# Dawn's OpenGL compatibility path, Mesa lavapipe for Deno/wgpu, SwiftShader from chromium) and
# chromium for the browser tests, then `npm ci`.
#
# Idempotent: installs only what is missing; safe to run again. As root it runs apt-get
# non-interactively; otherwise it prints the exact command to run (and still runs `npm ci`).
#
#   sudo bash scripts/setup-debian.sh          # or, as root: bash scripts/setup-debian.sh
#   SHINE_SKIP_NPM=1 bash scripts/setup-debian.sh   # system packages only
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --- WebGPU software adapters and the browser tests (issue 2) -------------------------------------
PACKAGES=(
  libegl1 libegl-mesa0 libgl1-mesa-dri libgles2   # Dawn OpenGL compatibility on Mesa llvmpipe (fastest CPU path)
  libvulkan1 mesa-vulkan-drivers                  # Vulkan loader + lavapipe (Deno native WebGPU on the CPU)
  chromium                                        # browser tests; ships SwiftShader's Vulkan ICD
  ca-certificates
  python3-astropy                                 # oracles of the FITS / WCS / catalog / output tests (issue 3)
  slurm-wlm munge                                 # survey runs: the real one-node SLURM of test/orchestrate/slurm-real.test.ts (issue 5)
)

# --- Later issues (NOT installed yet) -----------------------------------------------------------
# Added here by the issues that need them.
LATER_PACKAGES=()

missing=()
for p in "${PACKAGES[@]}" "${LATER_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-debian: this is not a Debian/Ubuntu system (no apt-get). Install the equivalent of:" >&2
  echo "  ${PACKAGES[*]}" >&2
elif [ "${#missing[@]}" -eq 0 ]; then
  echo "setup-debian: system packages already installed"
elif [ "$(id -u)" -eq 0 ]; then
  echo "setup-debian: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  # A fresh machine may have empty package lists; refresh them once, retry once on a mirror hiccup.
  apt-get update -q || { sleep 5; apt-get update -q; }
  apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" \
    || { sleep 5; apt-get update -q; apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}"; }
else
  echo "setup-debian: missing system packages. Run as root:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  echo "(or: sudo bash scripts/setup-debian.sh)" >&2
fi

if ! command -v node >/dev/null 2>&1; then
  echo "setup-debian: node (>= 20) is required: https://nodejs.org or the NodeSource packages" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup-debian: node $(node --version) is too old; shine-webgpu needs node >= 20" >&2
  exit 1
fi

if [ "${SHINE_SKIP_NPM:-0}" != 1 ]; then
  # npm writes node_modules/.package-lock.json after every install: newer than the lock file means
  # node_modules is up to date (CI always installs afresh).
  if [ "${CI:-}" != true ] && [ node_modules/.package-lock.json -nt package-lock.json ] && [ node_modules/.package-lock.json -nt package.json ]; then
    echo "setup-debian: node_modules is up to date (npm ci skipped; CI=true forces it)"
  else
    echo "setup-debian: npm ci"
    # A registry mirror that lacks some platforms' optional packages can make `npm ci` reject the
    # lock file; `npm install` then still installs the locked versions for this platform.
    npm ci --no-audit --no-fund || { echo "setup-debian: npm ci failed; trying npm install" >&2; npm install --no-audit --no-fund; }
  fi
fi
echo "setup-debian: done. Check the device with: npx tsx cli/shine.ts doctor"
