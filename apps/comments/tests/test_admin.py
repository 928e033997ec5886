"""The admin console for comments."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.comments.models import Comment
from apps.maps.models import Map
from tests.factories import MapFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:comments_comment_changelist")


@pytest.fixture
def map() -> Map:
    return MapFactory(name="Quay walls")


@pytest.fixture
def comment(map: Map) -> Comment:
    return Comment.objects.for_workspace(map.workspace).create(
        workspace=map.workspace,
        map=map,
        body="The crane foundation looks cracked here.",
        author=UserFactory(email="inspector@example.test"),
        anchor=Point(24.95, 60.16, srid=4326),
        anchor_zoom=17,
    )


def change_url(comment: Comment) -> str:
    return reverse("admin:comments_comment_change", args=[comment.pk])


def test_changelist_search_change_and_add_pages_open(admin_client: Client, comment: Comment) -> None:
    assert admin_client.get(CHANGELIST).status_code == 200
    assert change_url(comment) in admin_client.get(CHANGELIST, {"q": "crane"}).text
    assert change_url(comment) in admin_client.get(CHANGELIST, {"q": "inspector@example.test"}).text
    assert change_url(comment) not in admin_client.get(CHANGELIST, {"q": "nothing-like-it"}).text
    assert admin_client.get(change_url(comment)).status_code == 200
    assert admin_client.get(reverse("admin:comments_comment_add")).status_code == 200


def test_comment_page_draws_its_anchor_with_vendored_openlayers(admin_client: Client, comment: Comment) -> None:
    page = admin_client.get(change_url(comment)).text

    assert '<div id="id_anchor_map" class="dj_map">' in page
    assert "/static/vendor/ol/ol.js" in page
    assert "cdn.jsdelivr.net" not in page


def test_resolving_in_the_admin_records_who_and_when(admin_client: Client, admin_user: User, comment: Comment) -> None:
    form = {
        "body": comment.body,
        "is_resolved": "on",
        "map": comment.map_id,
        "anchor": comment.anchor.ewkt,
        "anchor_zoom": "17",
    }

    response = admin_client.post(change_url(comment), form)

    assert response.status_code == 302
    comment.refresh_from_db()
    assert comment.is_resolved
    assert comment.resolved_by == admin_user
    assert comment.resolved_at is not None


def test_comment_added_in_the_admin_is_authored_by_the_staff_member(
    admin_client: Client, admin_user: User, map: Map
) -> None:
    response = admin_client.post(
        reverse("admin:comments_comment_add"), {"body": "Checked on site.", "map": map.pk, "anchor": ""}
    )

    assert response.status_code == 302
    added = Comment.objects.for_workspace(map.workspace).get(body="Checked on site.")
    assert added.author == admin_user
    assert added.workspace_id == map.workspace_id
