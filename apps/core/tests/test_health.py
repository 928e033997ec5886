from __future__ import annotations

import pytest
from django.test import Client


def test_healthz_answers_ok_without_touching_services(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_postgis_redis_and_the_broker(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_unknown_api_urls_answer_json_404_and_pages_answer_html(client: Client) -> None:
    api = client.get("/api/v1/maps/not-a-uuid/")
    assert api.status_code == 404 and api.json() == {"code": "not_found", "detail": "Not found."}
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
