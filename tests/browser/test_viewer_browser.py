"""The map viewer in Debian's Chromium: the Helsinki demo map draws its basemap and all three layers.

Real everything: a small offline basemap built by our tiling code, the demo layers loaded by
`seed_demo` (ogr2ogr), the live server, and MapLibre rendering through SwiftShader.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from playwright.sync_api import Page, sync_playwright

from apps.accounts.models import User
from apps.maps.models import Map, MapLayer, Visibility
from apps.tiles.basemap.build import BuildOptions, basemap_build

# seed_demo stages through ogr2ogr's own connection and the live server reads from another
# thread: both need committed rows, so no test transaction.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    # Headless WebGL through software rendering; Chromium no longer falls back to it unasked.
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
BASEMAP_SOURCE = "openmaptiles"
LAYER_NAMES = ("Buildings", "Roads", "Points of interest")
IDLE_TIMEOUT_MS = 90_000

# Features drawn on screen, counted per source (basemap and `src-<layer id>`).
RENDERED_PER_SOURCE = """() => {
  const counts = {};
  for (const feature of window.meridianMap.queryRenderedFeatures()) {
    counts[feature.source] = (counts[feature.source] || 0) + 1;
  }
  return counts;
}"""


@pytest.fixture(scope="module")
def basemap(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """World zooms 0-2 plus central Helsinki to z14 (as apps/tiles/tests/test_basemap.py builds it)."""
    path = tmp_path_factory.mktemp("basemap") / "basemap.mbtiles"
    with django_db_blocker.unblock():
        basemap_build(BuildOptions(output=path, world_maxzoom=2), log=lambda _line: None)
    return path


@pytest.fixture
def helsinki(basemap: Path) -> Iterator[Map]:
    call_command("seed_demo", stdout=io.StringIO())
    with override_settings(MBTILES_DATABASE=str(basemap)):
        yield Map.objects.unscoped().get(workspace__slug="demo", name="Helsinki")


@contextmanager
def chromium_page(cookies: list[dict[str, str]] | None = None) -> Iterator[Page]:
    """A fresh browser page. Sync Playwright runs an event loop in this thread, and Django
    refuses ORM calls while one runs: do all database work before opening it."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_cookies(cookies or [])
        try:
            yield context.new_page()
        finally:
            browser.close()


def _layer_sources(map: Map) -> dict[str, str]:
    entries = MapLayer.objects.for_workspace(map.workspace_id).filter(map=map).select_related("layer")
    return {entry.layer.name: f"src-{entry.layer.pk}" for entry in entries}


def _session_cookie(base_url: str, email: str) -> dict[str, str]:
    """A real session cookie for the browser, made by Django's test client."""
    client = Client()
    client.force_login(User.objects.get(email=email))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    return {"name": cookie.key, "value": cookie.value, "url": base_url}


def _open_and_wait(page: Page, url: str, origin: str) -> tuple[dict[str, int], list[str]]:
    """Open the viewer and wait for MapLibre's first idle; the features drawn per source, and any
    request that left our origin or script error that was thrown on the way."""
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.goto(url)
    page.wait_for_selector("body[data-map-idle='true']", state="attached", timeout=IDLE_TIMEOUT_MS)
    problems += [f"foreign request: {u}" for u in requested if not u.startswith((origin, "data:", "blob:"))]
    return page.evaluate(RENDERED_PER_SOURCE), problems


def _click_a_rendered_feature(page: Page, source: str) -> None:
    """Click where MapLibre drew the first point of `source`."""
    x, y = page.evaluate(
        """(source) => {
          const feature = window.meridianMap.queryRenderedFeatures().find((f) => f.source === source);
          const point = window.meridianMap.project(feature.geometry.coordinates);
          const box = window.meridianMap.getContainer().getBoundingClientRect();
          return [box.left + point.x, box.top + point.y];
        }""",
        source,
    )
    page.mouse.click(x, y)


def test_a_member_sees_the_basemap_and_every_helsinki_layer_drawn(helsinki: Map, live_server: Any) -> None:
    sources = _layer_sources(helsinki)
    cookie = _session_cookie(live_server.url, "viewer@demo.meridian.test")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with chromium_page([cookie]) as page:
        rendered, problems = _open_and_wait(page, f"{live_server.url}/maps/{helsinki.pk}/", live_server.url)
        page.screenshot(path=str(SCREENSHOTS / "viewer-helsinki.png"))
        legend = page.inner_text("#legend")
        _click_a_rendered_feature(page, sources["Points of interest"])
        popup = page.wait_for_selector(".maplibregl-popup", timeout=10_000).inner_text()

    assert rendered.get(BASEMAP_SOURCE, 0) > 0, rendered
    for name in LAYER_NAMES:
        assert rendered.get(sources[name], 0) > 0, f"{name} drew nothing: {rendered}"
    assert problems == []
    assert "Points of interest" in popup and any(tag in popup for tag in ("amenity", "shop", "tourism"))
    assert "Primary road" in legend and "Restaurant" in legend


def test_an_anonymous_visitor_sees_a_public_map_by_its_share_link(helsinki: Map, live_server: Any) -> None:
    Map.objects.unscoped().filter(pk=helsinki.pk).update(visibility=Visibility.PUBLIC)
    sources = _layer_sources(helsinki)

    with chromium_page() as page:
        rendered, problems = _open_and_wait(page, f"{live_server.url}/m/{helsinki.share_token}", live_server.url)
        header = page.inner_text(".viewer-bar")

    assert rendered.get(BASEMAP_SOURCE, 0) > 0, rendered
    for name in LAYER_NAMES:
        assert rendered.get(sources[name], 0) > 0, f"{name} drew nothing: {rendered}"
    assert problems == []
    assert "Public view" in header
