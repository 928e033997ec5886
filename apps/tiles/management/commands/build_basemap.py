"""`manage.py build_basemap`: the offline OpenMapTiles basemap at settings.MBTILES_DATABASE.

Idempotent: when the file exists and was built from the same sources, code and
options, it does nothing (use --force to rebuild). `make run` calls it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.tiles.basemap.build import MAX_ZOOM, BasemapBuildError, BuildOptions, basemap_build
from apps.tiles.basemap.sources import BasemapSourceError


class Command(BaseCommand):
    help = "Build the offline OpenMapTiles basemap (MBTiles) from Natural Earth, GeoNames and OSM Helsinki."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="MBTiles path (default: settings.MBTILES_DATABASE)")
        parser.add_argument("--minzoom", type=int, default=0)
        parser.add_argument("--maxzoom", type=int, default=MAX_ZOOM)
        parser.add_argument(
            "--world-maxzoom",
            type=int,
            default=6,
            help="zooms up to this one cover the whole world; above it only the Helsinki extract (default 6)",
        )
        parser.add_argument("--force", action="store_true", help="rebuild even if the file is up to date")

    def handle(self, *args: Any, **options: Any) -> None:
        output = Path(options["output"] or settings.MBTILES_DATABASE)
        try:
            build_options = BuildOptions(
                output=output,
                minzoom=options["minzoom"],
                maxzoom=options["maxzoom"],
                world_maxzoom=options["world_maxzoom"],
                force=options["force"],
            )
            self.stdout.write(f"Basemap {output}")
            result = basemap_build(build_options, log=self.stdout.write)
        except (BasemapBuildError, BasemapSourceError) as error:
            raise CommandError(str(error)) from error
        if not result.built:
            self.stdout.write(f"  up to date ({result.tiles} tiles); --force rebuilds")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"  {result.tiles} tiles ({result.empty_tiles} empty skipped), "
                f"{result.file_bytes / 1e6:.1f} MB in {result.seconds:.1f}s "
                f"(load {result.timings['load']}s, prepare {result.timings['prepare']}s, "
                f"tiles {result.timings['tiles']}s)"
            )
        )
