#!/usr/bin/env bash
# Installs the Debian packages Meridian needs, when they are missing.
# As root it runs apt-get; with passwordless sudo it uses sudo; otherwise it
# prints the exact command to run and fails, so nothing half-works later.
set -euo pipefail

packages=(
  postgresql-15 postgresql-15-postgis-3   # the database and its spatial extension
  redis-server                            # broker, channel layer, cache
  gdal-bin                                # GDAL/OGR (libgdal for GeoDjango, ogr2ogr for loading)
  chromium fonts-dejavu-core              # headless browser for tests and posters
)
# Tools that may come from elsewhere (nodesource, pyenv): only asked for when absent.
command -v npm >/dev/null || packages+=(nodejs npm)   # front-end assets (MapLibre) come from npm
python3 -c "import ensurepip, venv" 2>/dev/null || packages+=(python3-venv)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" = 0 ]; then
  echo "[deps] installing: ${missing[*]}"
  bash -c "$cmd"
elif sudo -n true 2>/dev/null; then
  echo "[deps] installing with sudo: ${missing[*]}"
  sudo bash -c "$cmd"
else
  echo "[deps] missing Debian packages: ${missing[*]}" >&2
  echo "[deps] run as root:  $cmd" >&2
  exit 1
fi
