from __future__ import annotations

import pytest

from apps.comments.models import Comment
from apps.workspaces.models import Role
from conftest import client_for
from tests.factories import FeatureFactory, LayerFactory, MapLayerFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    entry = MapLayerFactory(map__visibility="workspace")
    workspace = entry.map.workspace
    return {
        "map": entry.map,
        "layer": entry.layer,
        "editor": MembershipFactory(workspace=workspace, role=Role.EDITOR).user,
        "viewer": MembershipFactory(workspace=workspace, role=Role.VIEWER).user,
        "admin": MembershipFactory(workspace=workspace, role=Role.ADMIN).user,
        "feature": FeatureFactory(layer=entry.layer, workspace=workspace),
    }


def test_a_thread_on_a_feature_with_replies_resolve_and_reopen(team: dict) -> None:
    editor, viewer = client_for(team["editor"]), client_for(team["viewer"])
    root = editor.post(
        "/api/v1/comments/",
        {
            "layer": str(team["layer"].pk),
            "feature": team["feature"].pk,
            "body": "Is this footprint right?",
            "anchor": {"type": "Point", "coordinates": [24.95, 60.17]},
            "anchor_zoom": 16,
        },
        format="json",
    )
    assert root.status_code == 201, root.json()
    root_id = root.json()["id"]
    reply = viewer.post("/api/v1/comments/", {"parent": root_id, "body": "Looks shifted east."}, format="json")
    assert reply.status_code == 201, reply.json()
    nested = editor.post("/api/v1/comments/", {"parent": reply.json()["id"], "body": "Fixed."}, format="json")
    assert nested.json()["parent"] == root_id  # threads stay one level deep

    thread = editor.get(f"/api/v1/comments/?parent={root_id}").json()["results"]
    assert [c["body"] for c in thread] == ["Looks shifted east.", "Fixed."]
    on_feature = editor.get(f"/api/v1/comments/?feature={team['feature'].pk}").json()["results"]
    assert [c["id"] for c in on_feature] == [root_id]
    assert editor.get(f"/api/v1/comments/{root_id}/").json()["reply_count"] == 2

    resolved = viewer.post(f"/api/v1/comments/{root_id}/resolve/")
    assert resolved.status_code == 200 and resolved.json()["is_resolved"] is True
    assert resolved.json()["resolved_by"]["id"] == team["viewer"].pk
    assert editor.get(f"/api/v1/comments/?layer={team['layer'].pk}&is_resolved=true").json()["count"] == 1
    reopened = editor.post(f"/api/v1/comments/{root_id}/reopen/")
    assert reopened.json()["is_resolved"] is False and reopened.json()["resolved_at"] is None


def test_only_the_author_edits_and_the_author_or_a_manager_deletes(team: dict) -> None:
    created = (
        client_for(team["viewer"])
        .post("/api/v1/comments/", {"map": str(team["map"].pk), "body": "First draft"}, format="json")
        .json()
    )
    url = f"/api/v1/comments/{created['id']}/"
    assert client_for(team["editor"]).patch(url, {"body": "Hijacked"}, format="json").status_code == 403
    edited = client_for(team["viewer"]).patch(url, {"body": "Second draft"}, format="json")
    assert edited.status_code == 200 and edited.json()["edited_at"] is not None
    assert client_for(team["editor"]).delete(url).status_code == 403
    assert client_for(team["admin"]).delete(url).status_code == 204
    assert not Comment.objects.for_workspace(team["map"].workspace).exists()


def test_a_feature_pin_must_be_on_the_commented_layer(team: dict) -> None:
    other = FeatureFactory(layer=LayerFactory(workspace=team["map"].workspace))
    response = client_for(team["editor"]).post(
        "/api/v1/comments/", {"layer": str(team["layer"].pk), "feature": other.pk, "body": "?"}, format="json"
    )
    assert response.status_code == 404
    both = client_for(team["editor"]).post(
        "/api/v1/comments/", {"layer": str(team["layer"].pk), "map": str(team["map"].pk), "body": "?"}, format="json"
    )
    assert both.status_code == 400 and "map" in both.json()["errors"]
