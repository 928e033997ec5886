"""The admin console for the map event log: readable, never written."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.collaboration.models import MapEvent
from tests.factories import MapFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:collaboration_mapevent_changelist")


@pytest.fixture
def event() -> MapEvent:
    map = MapFactory(name="Quay walls")
    return MapEvent.objects.for_workspace(map.workspace).create(
        workspace=map.workspace, map=map, seq=1, type="feature.updated", payload={"id": 7, "version": 2}
    )


def change_url(event: MapEvent) -> str:
    return reverse("admin:collaboration_mapevent_change", args=[event.pk])


def test_changelist_search_and_view_pages_open(admin_client: Client, event: MapEvent) -> None:
    assert admin_client.get(CHANGELIST).status_code == 200
    assert change_url(event) in admin_client.get(CHANGELIST, {"q": "feature.updated"}).text
    assert change_url(event) in admin_client.get(CHANGELIST, {"q": "quay"}).text
    assert change_url(event) not in admin_client.get(CHANGELIST, {"q": "map.deleted"}).text
    page = admin_client.get(change_url(event))
    assert page.status_code == 200
    assert "&quot;version&quot;: 2" in page.text


def test_events_cannot_be_added(admin_client: Client) -> None:
    assert admin_client.get(reverse("admin:collaboration_mapevent_add")).status_code == 403


def test_events_cannot_be_changed(admin_client: Client, event: MapEvent) -> None:
    page = admin_client.get(change_url(event)).text
    response = admin_client.post(change_url(event), {"type": "map.deleted", "seq": "9", "payload": "{}"})

    assert 'name="type"' not in page
    assert response.status_code == 403
    event.refresh_from_db()
    assert (event.type, event.seq) == ("feature.updated", 1)


def test_events_cannot_be_deleted(admin_client: Client, event: MapEvent) -> None:
    confirm = admin_client.get(reverse("admin:collaboration_mapevent_delete", args=[event.pk]))
    bulk = admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [event.pk]})

    assert confirm.status_code == 403
    assert 'value="delete_selected"' not in admin_client.get(CHANGELIST).text
    assert bulk.status_code in (200, 302)
    assert MapEvent.objects.unscoped().filter(pk=event.pk).exists()
