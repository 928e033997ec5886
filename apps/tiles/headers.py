"""The headers of a tile response, built in one place for the Django view and the warm-tile route.

The route answers without Django's middleware, so it also adds what SecurityMiddleware,
XFrameOptionsMiddleware and SessionMiddleware would (tests/route parity tests compare them).
"""

from __future__ import annotations

from django.conf import settings

MVT_CONTENT_TYPE = "application/vnd.mapbox-vector-tile"


def tile_cache_control(*, is_public: bool, data_version: int, requested_version: str | None) -> str:
    """URLs carrying the current `v` (data_version) are immutable; others revalidate by ETag."""
    scope = "public" if is_public else "private"
    if requested_version == str(data_version):
        return f"{scope}, max-age={86400 if scope == 'public' else 3600}"
    return f"{scope}, max-age=0, must-revalidate"


def tile_headers(*, etag: str, cache_control: str) -> dict[str, str]:
    """What the tile view itself sets on a 200, 204 and 304."""
    return {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}


def middleware_headers(*, is_secure: bool) -> list[tuple[str, str]]:
    """The headers Django's middleware adds to a tile response whose request read the session."""
    headers: list[tuple[str, str]] = []
    if is_secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append(("Strict-Transport-Security", hsts))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        value = policy if isinstance(policy, str) else ",".join(policy)
        headers.append(("Referrer-Policy", value))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    headers.append(("X-Frame-Options", getattr(settings, "X_FRAME_OPTIONS", "DENY").upper()))
    return headers
