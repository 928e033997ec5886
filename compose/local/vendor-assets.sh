#!/usr/bin/env bash
# Copies the browser libraries we serve ourselves from npm into static/vendor/
# (git-ignored; DESIGN §2), so every page works without a CDN — offline, in CI,
# behind a strict CSP. Safe to run again: a package is fetched only when its
# vendored files are missing or were vendored from another version.
set -euo pipefail
cd "$(dirname "$0")/../.."

NPM_PREFIX=var/npm

# vendor <package> <version> <dest under static/vendor> <file in the package>...
vendor() {
  local package=$1 version=$2 dest=static/vendor/$3
  shift 3
  local stamp=$dest/.version file missing=0
  for file in "$@"; do [ -s "$dest/$(basename "$file")" ] || missing=1; done
  if [ "$missing" = 0 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  echo "[assets] $package@$version -> $dest"
  npm install --no-audit --no-fund --save-exact --loglevel=error --prefix "$NPM_PREFIX" "$package@$version"
  mkdir -p "$dest"
  for file in "$@"; do cp "$NPM_PREFIX/node_modules/$package/$file" "$dest/"; done
  echo "$version" >"$stamp"
}

command -v npm >/dev/null || { echo "[assets] npm is missing; run: make deps" >&2; exit 1; }

# OpenLayers for the admin's geometry widgets (apps/workspaces/admin_base.py).
# 7.2.2 is the release Django 5.2's gis/js/OLMapWidget.js is written and tested
# against (Django's own CDN URL pins it); bump together with Django.
vendor ol 7.2.2 ol dist/ol.js ol.css

# MapLibre GL JS for the map viewer (templates/maps/viewer.html, static/js/viewer.js).
vendor maplibre-gl 5.24.1 maplibre-gl dist/maplibre-gl.js dist/maplibre-gl.css

# npm_data <package> <version>: a package installed into var/npm only for the data
# files it ships (read by management commands, never served as static files).
npm_data() {
  local package=$1 version=$2
  local installed
  installed=$(node -p "require('./$NPM_PREFIX/node_modules/$package/package.json').version" 2>/dev/null || true)
  [ "$installed" = "$version" ] && return 0
  echo "[assets] $package@$version -> $NPM_PREFIX (data)"
  npm install --no-audit --no-fund --save-exact --loglevel=error --prefix "$NPM_PREFIX" "$package@$version"
}

# Natural Earth countries and land as TopoJSON, for the basemap's low zooms
# (apps/tiles/basemap/sources.py; `manage.py build_basemap`).
npm_data world-atlas 2.0.2
