"""The authorization matrix: every /api/v1/ route and method, for every kind of person (STYLE: Tests).

The POLICY table below is the decision, written from the rules in DESIGN §3 (and the issue's
restatement of them), not computed from `apps/maps/permissions.py`: a route whose answers drift from
the table fails here. A route that exists without a row, or a row whose route is gone, fails too,
so a new endpoint cannot ship without someone deciding who may call it.

The world (tests/authz_world.py): workspaces A and B. Every target below belongs to A; `<ws>` is A's
slug. Columns, in order:

    own  A's owner          col  an editor of B with an accepted `edit` grant on A's private map
    adm  A's admin          non  a viewer of B with no grant in A (A's pending invitation is theirs)
    edi  A's editor         ano  nobody signed in
    vie  A's viewer

The rules the table follows:
- Anonymous: 401 wherever login is needed (every write, every list, me, tokens, jobs, invitations,
  collaborations, workspaces, comments). They may read a public map, its layers and events, its
  layers' detail and features; the same reads of anything non-public answer 404, never 403.
- Foreign or invisible objects answer 404 for every method; visible but not changeable answers 403.
- owner ⊃ admin ⊃ editor ⊃ viewer. Viewers view and comment on workspace and public maps, create
  nothing, edit nothing. Editors create maps and layers and edit the content of workspace and public
  maps (layers on the map, features, style) but manage (visibility, collaborators, share link,
  deletion; a layer's name and deletion) only what they created. Admins and owners do everything
  to every map; only owners delete the workspace; admins and owners manage members and invitations,
  but admins cannot change or remove owners and admins.
- A private map is visible to its creator, admins and owners, and its accepted collaborators, and
  so are its layer (not in the library) and its comments.
- The collaborator views, comments and edits content on the private map, manages nothing there,
  sees A's public map, and nothing else of A (not even A in /workspaces/).
- The library layer is visible to every member of A, to nobody else.
- Comments: view with the target; create and resolve/reopen with the right to comment; edit: the
  author only; delete: the author or a manager of the target.
- Jobs: the creator and A's admins and owners; nobody else sees one.
- My invitations and my collaborations: only the addressee may act on them.

The second half checks isolation: no list (nor the features bbox filter) ever shows a row of the
other workspace.
"""

# ruff: noqa: E501 — the policy tables are tables: one row per line, columns aligned.
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.http import HttpResponse
from django.urls import Resolver404

from apps.workspaces.models import Role
from tests.authz_routes import (
    SAMPLE_PLACEHOLDERS,
    api_routes,
    client_as,
    fill,
    response_json,
    route_of,
    send,
    walk_patterns,
)
from tests.authz_world import ACTORS, PLACEHOLDER_SHAPES, Fingerprints, World, build_world, fingerprints_of, leaks

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # under /api/v1/, with placeholders for the world's objects
    expected: dict[str, int]
    body: Any = None
    note: str = ""  # tells apart rows that send the same method to the same path
    if_match: bool = True  # feature writes send If-Match with the current version

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}" + (f" ({self.note})" if self.note else "")


def row(method: str, path: str, statuses: str, body: Any = None, *, note: str = "", if_match: bool = True) -> Row:
    codes = [int(code) for code in statuses.split()]
    if len(codes) != len(ACTORS):
        raise ValueError(f"{method} {path}: {len(codes)} statuses for {len(ACTORS)} actors")
    return Row(method, path, dict(zip(ACTORS, codes, strict=True)), body, note, if_match)


NEW_POINT = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [24.95, 60.17]},
    "properties": {"name": "New"},
}
REPLACED_POINT = {**NEW_POINT, "properties": {"name": "Replaced"}}
FEATURE_PATCH = {"properties": {"name": "Patched"}}
STYLE = {"style_config": {"type": "simple", "color": "#ff0000"}}
RENAME_LAYER = {"name": "Renamed layer"}
RENAME_MAP = {"name": "Renamed map", "description": "Content anyone who edits may change"}
BBOX = "bbox=-180,-90,180,90"
VIEWPORT = "west=-180&south=-85&east=180&north=85&zoom=14"

# fmt: off
POLICY: tuple[Row, ...] = (
    #                                                                        own adm edi vie col non ano
    # --- workspaces
    row("GET",    "workspaces/",                                            "200 200 200 200 200 200 401"),
    row("POST",   "workspaces/",                                            "201 201 201 201 201 201 401", {"name": "Fresh workspace"}),
    row("GET",    "workspaces/<ws>/",                                       "200 200 200 200 404 404 401"),
    row("PATCH",  "workspaces/<ws>/",                                       "200 200 403 403 404 404 401", {"description": "Updated"}),
    row("DELETE", "workspaces/<ws>/",                                       "204 403 403 403 404 404 401"),
    # --- members (viewer2 is a second viewer, admin2 a second admin: neither is an actor)
    row("GET",    "workspaces/<ws>/members/",                               "200 200 200 200 404 404 401"),
    row("GET",    "workspaces/<ws>/members/<viewer2>/",                     "200 200 200 200 404 404 401"),
    row("PATCH",  "workspaces/<ws>/members/<viewer2>/",                     "200 200 403 403 404 404 401", {"role": "editor"}),
    row("PATCH",  "workspaces/<ws>/members/<admin2>/",                      "200 403 403 403 404 404 401", {"role": "editor"}),
    row("PATCH",  "workspaces/<ws>/members/<viewer2>/",                     "200 403 403 403 404 404 401", {"role": "admin"}, note="to admin"),
    row("DELETE", "workspaces/<ws>/members/<viewer2>/",                     "204 204 403 403 404 404 401"),
    row("DELETE", "workspaces/<ws>/members/<admin2>/",                      "204 403 403 403 404 404 401"),
    # --- a workspace's invitations (the pending one is addressed to the non-member)
    row("GET",    "workspaces/<ws>/invitations/",                           "200 200 403 403 404 404 401"),
    row("POST",   "workspaces/<ws>/invitations/",                           "201 201 403 403 404 404 401", {"email": "newcomer@example.test", "role": "viewer"}),
    row("POST",   "workspaces/<ws>/invitations/",                           "201 403 403 403 404 404 401", {"email": "newcomer@example.test", "role": "admin"}, note="as admin"),
    row("DELETE", "workspaces/<ws>/invitations/<invitation>/",              "204 204 403 403 404 404 401"),
    # --- imports (no file in the body: authorisation answers first, then 400 "file: required")
    row("POST",   "imports/",                                               "400 400 400 403 404 404 401", {"workspace": "<ws>", "name": "Imported layer"}),
    # --- my invitations, my collaborations, me, my tokens
    row("GET",    "invitations/",                                           "200 200 200 200 200 200 401"),
    row("POST",   "invitations/<invitation>/accept/",                       "404 404 404 404 404 200 401"),
    row("POST",   "invitations/<invitation>/decline/",                      "404 404 404 404 404 200 401"),
    row("GET",    "collaborations/",                                        "200 200 200 200 200 200 401"),
    row("POST",   "collaborations/<grant>/accept/",                         "404 404 404 404 200 404 401"),
    row("POST",   "collaborations/<grant>/decline/",                        "404 404 404 404 204 404 401"),
    row("POST",   "collaborations/<private-invitee>/accept/",               "404 404 404 404 404 404 401"),
    row("GET",    "me/",                                                    "200 200 200 200 200 200 401"),
    row("PATCH",  "me/",                                                    "200 200 200 200 200 200 401", {"name": "New name"}),
    row("GET",    "me/tokens/",                                             "200 200 200 200 200 200 401"),
    row("POST",   "me/tokens/",                                             "201 201 201 201 201 201 401", {"name": "ci"}),
    row("DELETE", "me/tokens/<owners-token>/",                              "204 404 404 404 404 404 401"),
    # --- maps
    row("GET",    "maps/",                                                  "200 200 200 200 200 200 401"),
    row("GET",    "maps/?workspace=<ws>",                                   "200 200 200 200 404 404 401"),
    row("POST",   "maps/",                                                  "201 201 201 403 404 404 401", {"workspace": "<ws>", "name": "New map"}),
    row("GET",    "maps/<private>/",                                        "200 200 404 404 200 404 404"),
    row("GET",    "maps/<workspace>/",                                      "200 200 200 200 404 404 404"),
    row("GET",    "maps/<public>/",                                         "200 200 200 200 200 200 200"),
    row("PATCH",  "maps/<private>/",                                        "200 200 404 404 200 404 401", RENAME_MAP, note="content"),
    row("PATCH",  "maps/<workspace>/",                                      "200 200 200 403 404 404 401", RENAME_MAP, note="content"),
    row("PATCH",  "maps/<public>/",                                         "200 200 200 403 403 403 401", RENAME_MAP, note="content"),
    row("PATCH",  "maps/<private>/",                                        "200 200 404 404 403 404 401", {"visibility": "workspace"}, note="visibility"),
    row("PATCH",  "maps/<workspace>/",                                      "200 200 403 403 404 404 401", {"visibility": "private"}, note="visibility"),
    row("PATCH",  "maps/<public>/",                                         "200 200 403 403 403 403 401", {"visibility": "workspace"}, note="visibility"),
    row("PATCH",  "maps/<editors-map>/",                                    "200 200 200 403 404 404 401", {"visibility": "private"}, note="visibility"),
    row("DELETE", "maps/<private>/",                                        "204 204 404 404 403 404 401"),
    row("DELETE", "maps/<workspace>/",                                      "204 204 403 403 404 404 401"),
    row("DELETE", "maps/<public>/",                                         "204 204 403 403 403 403 401"),
    row("DELETE", "maps/<editors-map>/",                                    "204 204 204 403 404 404 401"),
    row("POST",   "maps/<private>/share-token/rotate/",                     "200 200 404 404 403 404 401"),
    row("POST",   "maps/<workspace>/share-token/rotate/",                   "200 200 403 403 404 404 401"),
    row("POST",   "maps/<public>/share-token/rotate/",                      "200 200 403 403 403 403 401"),
    row("POST",   "maps/<editors-map>/share-token/rotate/",                 "200 200 200 403 404 404 401"),
    row("GET",    "maps/<private>/events/",                                 "200 200 404 404 200 404 404"),
    row("GET",    "maps/<workspace>/events/",                               "200 200 200 200 404 404 404"),
    row("GET",    "maps/<public>/events/",                                  "200 200 200 200 200 200 200"),
    # --- layers on a map
    row("GET",    "maps/<private>/layers/",                                 "200 200 404 404 200 404 404"),
    row("GET",    "maps/<workspace>/layers/",                               "200 200 200 200 404 404 404"),
    row("GET",    "maps/<public>/layers/",                                  "200 200 200 200 200 200 200"),
    row("POST",   "maps/<private>/layers/",                                 "201 201 404 404 201 404 401", {"layer": "<public-layer>"}),
    row("POST",   "maps/<workspace>/layers/",                               "201 201 201 403 404 404 401", {"layer": "<library-layer>"}),
    row("POST",   "maps/<public>/layers/",                                  "201 201 201 403 403 403 401", {"layer": "<library-layer>"}),
    row("POST",   "maps/<workspace>/layers/",                               "201 201 404 403 404 404 401", {"layer": "<private-layer>"}, note="<private-layer>"),
    row("POST",   "maps/<private>/layers/reorder/",                         "200 200 404 404 200 404 401", {"layers": ["<private-layer>"]}),
    row("POST",   "maps/<workspace>/layers/reorder/",                       "200 200 200 403 404 404 401", {"layers": ["<workspace-layer>"]}),
    row("POST",   "maps/<public>/layers/reorder/",                          "200 200 200 403 403 403 401", {"layers": ["<public-layer>"]}),
    row("PATCH",  "maps/<private>/layers/<private-layer>/",                 "200 200 404 404 200 404 401", {"opacity": 0.5}),
    row("PATCH",  "maps/<workspace>/layers/<workspace-layer>/",             "200 200 200 403 404 404 401", {"opacity": 0.5}),
    row("PATCH",  "maps/<public>/layers/<public-layer>/",                   "200 200 200 403 403 403 401", {"opacity": 0.5}),
    row("DELETE", "maps/<private>/layers/<private-layer>/",                 "204 204 404 404 204 404 401"),
    row("DELETE", "maps/<workspace>/layers/<workspace-layer>/",             "204 204 204 403 404 404 401"),
    row("DELETE", "maps/<public>/layers/<public-layer>/",                   "204 204 204 403 403 403 401"),
    # --- a map's collaborators (each map has one pending invitee; the collaborator's grant is on <private>)
    row("GET",    "maps/<private>/collaborators/",                          "200 200 404 404 403 404 401"),
    row("GET",    "maps/<workspace>/collaborators/",                        "200 200 403 403 404 404 401"),
    row("GET",    "maps/<public>/collaborators/",                           "200 200 403 403 403 403 401"),
    row("POST",   "maps/<private>/collaborators/",                          "201 201 404 404 403 404 401", {"email": "friend@example.test", "permission": "view"}),
    row("POST",   "maps/<workspace>/collaborators/",                        "201 201 403 403 404 404 401", {"email": "friend@example.test", "permission": "view"}),
    row("POST",   "maps/<public>/collaborators/",                           "201 201 403 403 403 403 401", {"email": "friend@example.test", "permission": "view"}),
    row("POST",   "maps/<editors-map>/collaborators/",                      "201 201 201 403 404 404 401", {"email": "friend@example.test", "permission": "view"}),
    row("PATCH",  "maps/<private>/collaborators/<private-invitee>/",        "200 200 404 404 403 404 401", {"permission": "comment"}),
    row("PATCH",  "maps/<workspace>/collaborators/<workspace-invitee>/",    "200 200 403 403 404 404 401", {"permission": "comment"}),
    row("PATCH",  "maps/<public>/collaborators/<public-invitee>/",          "200 200 403 403 403 403 401", {"permission": "comment"}),
    row("DELETE", "maps/<private>/collaborators/<private-invitee>/",        "204 204 404 404 403 404 401"),
    row("DELETE", "maps/<workspace>/collaborators/<workspace-invitee>/",    "204 204 403 403 404 404 401"),
    row("DELETE", "maps/<public>/collaborators/<public-invitee>/",          "204 204 403 403 403 403 401"),
    # --- layers (each map's layer is on that map only; the library layer is on none)
    row("GET",    "layers/",                                                "200 200 200 200 200 200 401"),
    row("GET",    "layers/?workspace=<ws>",                                 "200 200 200 200 404 404 401"),
    row("POST",   "layers/",                                                "201 201 201 403 404 404 401", {"workspace": "<ws>", "name": "New layer", "geometry_type": "point"}),
    row("GET",    "layers/<private-layer>/",                                "200 200 404 404 200 404 404"),
    row("GET",    "layers/<workspace-layer>/",                              "200 200 200 200 404 404 404"),
    row("GET",    "layers/<public-layer>/",                                 "200 200 200 200 200 200 200"),
    row("GET",    "layers/<library-layer>/",                                "200 200 200 200 404 404 404"),
    row("GET",    f"layers/<private-layer>/viewport/?{VIEWPORT}",          "200 200 404 404 200 404 404"),
    row("GET",    f"layers/<workspace-layer>/viewport/?{VIEWPORT}",        "200 200 200 200 404 404 404"),
    row("GET",    f"layers/<public-layer>/viewport/?{VIEWPORT}",           "200 200 200 200 200 200 200"),
    row("GET",    f"layers/<library-layer>/viewport/?{VIEWPORT}",          "200 200 200 200 404 404 404"),
    row("GET",    "layers/<private-layer>/stats/",                          "200 200 404 404 200 404 404"),
    row("GET",    "layers/<workspace-layer>/stats/",                        "200 200 200 200 404 404 404"),
    row("GET",    "layers/<public-layer>/stats/",                           "200 200 200 200 200 200 200"),
    row("GET",    "layers/<b-workspace-layer>/stats/",                      "404 404 404 404 200 200 404"),
    row("PATCH",  "layers/<private-layer>/",                                "200 200 404 404 200 404 401", STYLE, note="style"),
    row("PATCH",  "layers/<workspace-layer>/",                              "200 200 200 403 404 404 401", STYLE, note="style"),
    row("PATCH",  "layers/<public-layer>/",                                 "200 200 200 403 403 403 401", STYLE, note="style"),
    row("PATCH",  "layers/<library-layer>/",                                "200 200 200 403 404 404 401", STYLE, note="style"),
    row("PATCH",  "layers/<private-layer>/",                                "200 200 404 404 403 404 401", RENAME_LAYER, note="name"),
    row("PATCH",  "layers/<workspace-layer>/",                              "200 200 403 403 404 404 401", RENAME_LAYER, note="name"),
    row("PATCH",  "layers/<public-layer>/",                                 "200 200 403 403 403 403 401", RENAME_LAYER, note="name"),
    row("PATCH",  "layers/<library-layer>/",                                "200 200 403 403 404 404 401", RENAME_LAYER, note="name"),
    row("DELETE", "layers/<private-layer>/",                                "204 204 404 404 403 404 401"),
    row("DELETE", "layers/<workspace-layer>/",                              "204 204 403 403 404 404 401"),
    row("DELETE", "layers/<public-layer>/",                                 "204 204 403 403 403 403 401"),
    row("DELETE", "layers/<library-layer>/",                                "204 204 403 403 404 404 401"),
    # --- features follow their layer: view → read, edit → write
    row("GET",    "layers/<private-layer>/features/",                       "200 200 404 404 200 404 404"),
    row("GET",    "layers/<workspace-layer>/features/",                     "200 200 200 200 404 404 404"),
    row("GET",    "layers/<public-layer>/features/",                        "200 200 200 200 200 200 200"),
    row("GET",    "layers/<library-layer>/features/",                       "200 200 200 200 404 404 404"),
    row("GET",    f"layers/<private-layer>/features/?{BBOX}",            "200 200 404 404 200 404 404"),
    row("GET",    f"layers/<public-layer>/features/?{BBOX}",             "200 200 200 200 200 200 200"),
    # --- exports (login required, even for a public layer: a large export is a job, and jobs have an owner)
    row("GET",    "layers/<private-layer>/export/?format=csv",              "200 200 404 404 200 404 401"),
    row("GET",    "layers/<workspace-layer>/export/?format=csv",            "200 200 200 200 404 404 401"),
    row("GET",    "layers/<public-layer>/export/?format=csv",               "200 200 200 200 200 200 401"),
    row("GET",    "layers/<library-layer>/export/?format=csv",              "200 200 200 200 404 404 401"),
    row("GET",    "layers/<b-workspace-layer>/export/?format=csv",          "404 404 404 404 200 200 401"),
    # tile archives are always a job (202), behind the same view right
    row("GET",    "layers/<private-layer>/export/?format=mbtiles",          "202 202 404 404 202 404 401"),
    row("GET",    "layers/<workspace-layer>/export/?format=pmtiles",        "202 202 202 202 404 404 401"),
    row("GET",    "layers/<b-workspace-layer>/export/?format=pmtiles",      "404 404 404 404 202 202 401"),
    row("GET",    "layers/<private-layer>/features/attributes/",            "200 200 404 404 200 404 404"),
    row("GET",    "layers/<workspace-layer>/features/attributes/",          "200 200 200 200 404 404 404"),
    row("GET",    "layers/<public-layer>/features/attributes/",             "200 200 200 200 200 200 200"),
    row("GET",    "layers/<library-layer>/features/attributes/",            "200 200 200 200 404 404 404"),
    row("POST",   "layers/<private-layer>/features/",                       "201 201 404 404 201 404 401", NEW_POINT),
    row("POST",   "layers/<workspace-layer>/features/",                     "201 201 201 403 404 404 401", NEW_POINT),
    row("POST",   "layers/<public-layer>/features/",                        "201 201 201 403 403 403 401", NEW_POINT),
    row("POST",   "layers/<library-layer>/features/",                       "201 201 201 403 404 404 401", NEW_POINT),
    row("GET",    "layers/<private-layer>/features/<private-feature>/",     "200 200 404 404 200 404 404"),
    row("GET",    "layers/<workspace-layer>/features/<workspace-feature>/", "200 200 200 200 404 404 404"),
    row("GET",    "layers/<public-layer>/features/<public-feature>/",       "200 200 200 200 200 200 200"),
    row("GET",    "layers/<library-layer>/features/<library-feature>/",     "200 200 200 200 404 404 404"),
    row("PUT",    "layers/<private-layer>/features/<private-feature>/",     "200 200 404 404 200 404 401", REPLACED_POINT),
    row("PUT",    "layers/<workspace-layer>/features/<workspace-feature>/", "200 200 200 403 404 404 401", REPLACED_POINT),
    row("PUT",    "layers/<public-layer>/features/<public-feature>/",       "200 200 200 403 403 403 401", REPLACED_POINT),
    row("PUT",    "layers/<library-layer>/features/<library-feature>/",     "200 200 200 403 404 404 401", REPLACED_POINT),
    row("PATCH",  "layers/<private-layer>/features/<private-feature>/",     "200 200 404 404 200 404 401", FEATURE_PATCH),
    row("PATCH",  "layers/<workspace-layer>/features/<workspace-feature>/", "200 200 200 403 404 404 401", FEATURE_PATCH),
    row("PATCH",  "layers/<public-layer>/features/<public-feature>/",       "200 200 200 403 403 403 401", FEATURE_PATCH),
    row("PATCH",  "layers/<library-layer>/features/<library-feature>/",     "200 200 200 403 404 404 401", FEATURE_PATCH),
    row("DELETE", "layers/<private-layer>/features/<private-feature>/",     "204 204 404 404 204 404 401"),
    row("DELETE", "layers/<workspace-layer>/features/<workspace-feature>/", "204 204 204 403 404 404 401"),
    row("DELETE", "layers/<public-layer>/features/<public-feature>/",       "204 204 204 403 403 403 401"),
    row("DELETE", "layers/<library-layer>/features/<library-feature>/",     "204 204 204 403 404 404 401"),
    # without If-Match: 428, but only for those who pass authorization
    row("PATCH",  "layers/<private-layer>/features/<private-feature>/",     "428 428 404 404 428 404 401", FEATURE_PATCH, note="no If-Match", if_match=False),
    row("PUT",    "layers/<public-layer>/features/<public-feature>/",       "428 428 428 403 403 403 401", REPLACED_POINT, note="no If-Match", if_match=False),
    row("DELETE", "layers/<workspace-layer>/features/<workspace-feature>/", "428 428 428 403 404 404 401", note="no If-Match", if_match=False),
    # --- comments (by A's owner on each map; <viewers-comment> is the viewer's, on <workspace>)
    row("GET",    "comments/",                                              "200 200 200 200 200 200 401"),
    row("POST",   "comments/",                                              "201 201 404 404 201 404 401", {"map": "<private>", "body": "Looks good"}, note="on <private>"),
    row("POST",   "comments/",                                              "201 201 201 201 404 404 401", {"map": "<workspace>", "body": "Looks good"}, note="on <workspace>"),
    row("POST",   "comments/",                                              "201 201 201 201 403 403 401", {"map": "<public>", "body": "Looks good"}, note="on <public>"),
    row("POST",   "comments/",                                              "201 201 404 404 201 404 401", {"parent": "<private-comment>", "body": "Agreed"}, note="reply on <private>"),
    row("POST",   "comments/",                                              "201 201 404 404 201 404 401", {"layer": "<private-layer>", "body": "Looks good"}, note="on <private-layer>"),
    row("POST",   "comments/",                                              "201 201 201 201 404 404 401", {"layer": "<library-layer>", "body": "Looks good"}, note="on <library-layer>"),
    row("POST",   "comments/",                                              "404 404 404 404 404 404 401", {"layer": "<public-layer>", "feature": "<private-feature>", "body": "Hm"}, note="pinned to another layer's feature"),
    row("GET",    "comments/?layer=<private-layer>",                        "200 200 404 404 200 404 401"),
    row("GET",    "comments/<private-comment>/",                            "200 200 404 404 200 404 401"),
    row("GET",    "comments/<workspace-comment>/",                          "200 200 200 200 404 404 401"),
    row("GET",    "comments/<public-comment>/",                             "200 200 200 200 200 200 401"),
    row("PATCH",  "comments/<private-comment>/",                            "200 403 404 404 403 404 401", {"body": "Edited"}),
    row("PATCH",  "comments/<workspace-comment>/",                          "200 403 403 403 404 404 401", {"body": "Edited"}),
    row("PATCH",  "comments/<public-comment>/",                             "200 403 403 403 403 403 401", {"body": "Edited"}),
    row("PATCH",  "comments/<viewers-comment>/",                            "403 403 403 200 404 404 401", {"body": "Edited"}),
    row("DELETE", "comments/<private-comment>/",                            "204 204 404 404 403 404 401"),
    row("DELETE", "comments/<workspace-comment>/",                          "204 204 403 403 404 404 401"),
    row("DELETE", "comments/<public-comment>/",                             "204 204 403 403 403 403 401"),
    row("DELETE", "comments/<viewers-comment>/",                            "204 204 403 204 404 404 401"),
    row("POST",   "comments/<private-comment>/resolve/",                    "200 200 404 404 200 404 401"),
    row("POST",   "comments/<workspace-comment>/resolve/",                  "200 200 200 200 404 404 401"),
    row("POST",   "comments/<public-comment>/resolve/",                     "200 200 200 200 403 403 401"),
    row("POST",   "comments/<private-comment>/reopen/",                     "200 200 404 404 200 404 401"),
    row("POST",   "comments/<workspace-comment>/reopen/",                   "200 200 200 200 404 404 401"),
    row("POST",   "comments/<public-comment>/reopen/",                      "200 200 200 200 403 403 401"),
    # --- jobs (<job> was started by A's editor)
    row("GET",    "jobs/",                                                  "200 200 200 200 200 200 401"),
    row("GET",    "jobs/?workspace=<ws>",                                   "200 200 200 200 404 404 401"),
    row("GET",    "jobs/<job>/",                                            "200 200 200 404 404 404 401"),
    row("POST",   "jobs/<job>/cancel/",                                     "200 200 200 404 404 404 401"),
    row("GET",    "jobs/<job>/download/",                                   "404 404 404 404 404 404 401"),
    # --- a child reached through the wrong parent is not there (404), whoever asks
    row("GET",    "layers/<public-layer>/features/<private-feature>/",      "404 404 404 404 404 404 404"),
    row("PATCH",  "layers/<public-layer>/features/<private-feature>/",      "404 404 404 403 403 403 401", FEATURE_PATCH),
    row("DELETE", "layers/<public-layer>/features/<private-feature>/",      "404 404 404 403 403 403 401"),
    row("PATCH",  "maps/<public>/layers/<private-layer>/",                  "404 404 404 403 403 403 401", {"opacity": 0.5}),
    row("DELETE", "maps/<public>/collaborators/<private-invitee>/",         "404 404 403 403 403 403 401"),
    row("GET",    "workspaces/<ws>/members/<b-collaborator>/",              "404 404 404 404 404 404 401"),
    row("PATCH",  "workspaces/<ws>/members/<b-owner>/",                     "404 404 404 404 404 404 401", {"role": "viewer"}),
    row("DELETE", "workspaces/<ws>/invitations/<b-invitation>/",            "404 404 404 404 404 404 401"),
    row("GET",    "layers/?map=<private>",                                  "200 200 404 404 200 404 401"),
    row("GET",    "comments/?map=<private>",                                "200 200 404 404 200 404 401"),
    # --- B's objects: foreign to A's members (404), home to the collaborator (B's editor) and the
    # non-member (B's viewer); a public map of B is readable by anyone who has the link
    row("GET",    "workspaces/<b-ws>/",                                     "404 404 404 404 200 200 401"),
    row("GET",    "maps/?workspace=<b-ws>",                                 "404 404 404 404 200 200 401"),
    row("GET",    "layers/?workspace=<b-ws>",                               "404 404 404 404 200 200 401"),
    row("GET",    "jobs/?workspace=<b-ws>",                                 "404 404 404 404 200 200 401"),
    row("GET",    "comments/?map=<b-workspace>",                            "404 404 404 404 200 200 401"),
    row("GET",    "maps/<b-workspace>/",                                    "404 404 404 404 200 200 404"),
    row("PATCH",  "maps/<b-workspace>/",                                    "404 404 404 404 200 403 401", RENAME_MAP, note="content"),
    row("DELETE", "maps/<b-private>/",                                      "404 404 404 404 404 404 401"),
    row("GET",    "maps/<b-public>/",                                       "200 200 200 200 200 200 200"),
    row("PATCH",  "maps/<b-public>/",                                       "403 403 403 403 200 403 401", RENAME_MAP, note="content"),
    row("POST",   "maps/<workspace>/layers/",                               "404 404 404 403 404 404 401", {"layer": "<b-public-layer>"}, note="B's public layer"),
    row("POST",   "maps/<private>/layers/",                                 "404 404 404 404 404 404 401", {"layer": "<b-library-layer>"}, note="B's library layer"),
    row("GET",    "layers/<b-library-layer>/",                              "404 404 404 404 200 200 404"),
    row("GET",    "layers/<b-public-layer>/features/<b-public-feature>/",   "200 200 200 200 200 200 200"),
    row("POST",   "layers/<b-public-layer>/features/",                      "403 403 403 403 201 403 401", NEW_POINT),
    row("POST",   "comments/",                                              "404 404 404 404 201 201 401", {"map": "<b-workspace>", "body": "Hi"}, note="on B's <workspace>"),
    row("POST",   "comments/",                                              "403 403 403 403 201 201 401", {"map": "<b-public>", "body": "Hi"}, note="on B's <public>"),
    row("GET",    "comments/<b-workspace-comment>/",                        "404 404 404 404 200 200 401"),
    row("GET",    "jobs/<b-job>/",                                          "404 404 404 404 404 404 401"),
    row("POST",   "invitations/<b-invitation>/accept/",                     "404 404 404 404 404 404 401"),
)
# fmt: on

# Rows that answer otherwise today, each with the bug it shows: (row label, actor) → reason.
# None today: every row answers as the rules say. A bug found later goes here, marked xfail(strict).
KNOWN_BUGS: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """One world per module, inside a transaction that is never committed.

    Each test runs in a savepoint inside it (pytest-django's `db`), so every test starts from the
    same untouched world however much the previous one wrote or deleted, and building it once keeps
    the matrix fast.
    """
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            world = build_world()
            world.forbidden = {actor: _forbidden(world, actor) for actor in ISOLATION_ACTORS}
            yield world
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def _describe(response: HttpResponse) -> str:
    return f"answered {response.status_code}: {response.content[:300]!r}"


def _matrix_cases() -> Iterator[Any]:
    for entry in POLICY:
        for actor in ACTORS:
            reason = KNOWN_BUGS.get((entry.label, actor))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(entry, actor, id=f"{entry.label} as {actor}", marks=marks)


@pytest.mark.parametrize(("entry", "actor"), list(_matrix_cases()))
def test_each_route_answers_each_actor_as_the_rules_say(world: World, entry: Row, actor: str) -> None:
    values = world.placeholders()
    response = send(
        client_as(world.actors[actor]),
        entry.method,
        fill(entry.path, values),
        fill(entry.body, values),
        if_match=entry.if_match,
    )
    assert response.status_code == entry.expected[actor], _describe(response)
    if world.home(actor) is world.a and "<b-" not in entry.path + repr(entry.body):
        found = leaks(response_json(response), response.content.decode(), world.forbidden[actor])
        assert not found, f"the answer shows B's rows {found}: {response.content[:300]!r}"


# --- the table and the URL resolver agree --------------------------------------------------


def _table_routes() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for entry in POLICY:
        try:
            name = route_of(entry.path)
        except Resolver404:
            name = f"<unresolvable {entry.path}>"
        found.setdefault((name, entry.method), []).append(entry.label)
    return found


def test_every_api_route_and_method_has_a_policy_row() -> None:
    missing = sorted(set(api_routes()) - set(_table_routes()))
    assert not missing, f"decide who may call these, then add rows to POLICY: {missing}"


def test_the_policy_table_names_only_routes_and_methods_that_exist() -> None:
    stale = {key: labels for key, labels in _table_routes().items() if key not in api_routes()}
    assert not stale, f"these rows name no existing route and method: {stale}"


def test_the_policy_table_uses_only_known_placeholders_and_no_duplicate_rows() -> None:
    labels = [entry.label for entry in POLICY]
    assert len(labels) == len(set(labels)), "two rows with one label: give one a note"
    for entry in POLICY:
        for text in (entry.path, repr(entry.body)):
            unknown = fill(text, dict.fromkeys(PLACEHOLDER_SHAPES, ""))
            assert "<" not in unknown, f"{entry.label}: unknown placeholder in {text}"


def test_every_known_bug_names_a_row_and_an_actor() -> None:
    labels = {entry.label for entry in POLICY}
    unknown = [key for key in KNOWN_BUGS if key[0] not in labels or key[1] not in ACTORS]
    assert not unknown, f"KNOWN_BUGS entries that match no case: {unknown}"


# --- isolation: no list shows the other workspace's rows -------------------------------------


@dataclass(frozen=True)
class ListRequest:
    path: str  # placeholders are filled from the actor's own workspace
    audience: str = "members"  # members | managers (admins and owners; others get 403) | anyone
    shows: str | None = None  # a placeholder whose value the answer must contain (not vacuous)


LISTS: tuple[ListRequest, ...] = (
    ListRequest("me/"),
    ListRequest("workspaces/", shows="<ws>"),
    ListRequest("workspaces/<ws>/members/"),
    ListRequest("workspaces/<ws>/invitations/", audience="managers", shows="<invitation>"),
    ListRequest("invitations/"),
    ListRequest("collaborations/"),
    ListRequest("me/tokens/"),
    ListRequest("maps/", shows="<workspace>"),
    ListRequest("maps/?workspace=<ws>", shows="<workspace>"),
    ListRequest("maps/<workspace>/layers/", shows="<workspace-layer>"),
    ListRequest("maps/<workspace>/events/", shows="<workspace-layer>"),
    ListRequest("maps/<workspace>/collaborators/", audience="managers", shows="<workspace-invitee>"),
    ListRequest("maps/<public>/layers/", audience="anyone", shows="<public-layer>"),
    ListRequest("maps/<public>/events/", audience="anyone", shows="<public-layer>"),
    ListRequest("layers/", shows="<library-layer>"),
    ListRequest("layers/?workspace=<ws>", shows="<library-layer>"),
    ListRequest("layers/?is_global=true", shows="<library-layer>"),
    ListRequest("layers/<workspace-layer>/features/", shows="<workspace-feature>"),
    ListRequest(f"layers/<workspace-layer>/features/?{BBOX}", shows="<workspace-feature>"),
    ListRequest(f"layers/<library-layer>/features/?{BBOX}", shows="<library-feature>"),
    ListRequest(f"layers/<public-layer>/features/?{BBOX}", audience="anyone", shows="<public-feature>"),
    ListRequest(f"layers/<workspace-layer>/features/attributes/?{BBOX}", shows="<workspace-feature>"),
    ListRequest(f"layers/<public-layer>/features/attributes/?{BBOX}", audience="anyone", shows="<public-feature>"),
    ListRequest("comments/", shows="<workspace-comment>"),
    ListRequest("comments/?map=<workspace>", shows="<workspace-comment>"),
    ListRequest("jobs/"),
    ListRequest("jobs/?workspace=<ws>"),
)
LIST_ACTIONS = frozenset({"list", "events", "layers", "attributes"})

# Who looks, and their role in their own workspace. The first four are A's, the rest B's
# (the collaborator and the non-member belong to B); the anonymous visitor reads A's public map.
ISOLATION_ACTORS: dict[str, str | None] = {
    "owner": Role.OWNER,
    "admin": Role.ADMIN,
    "editor": Role.EDITOR,
    "viewer": Role.VIEWER,
    "b_owner": Role.OWNER,
    "collaborator": Role.EDITOR,
    "non_member": Role.VIEWER,
    "anonymous": None,
}


def _forbidden(world: World, actor: str) -> Fingerprints:
    """The other workspace's ids, less what the rules let this actor see of it."""
    b_users_known_to_a = {world.b.users["collaborator"].pk, world.b.users["non_member"].pk}
    if world.home(actor) is world.a:
        return fingerprints_of(world.b, known_to_other_side=b_users_known_to_a)
    of_a = fingerprints_of(world.a, known_to_other_side=set())
    shared_by = {world.a.workspace.slug, world.a.users["owner"].email}  # shown with what they share
    if actor == "collaborator":
        granted = {world.a.maps["private"], world.a.layers["private"], world.a.comments["private"], world.a.grant}
        return of_a.without(
            strings={str(obj.pk) for obj in granted} | shared_by, integers={world.a.features["private"].pk}
        )
    if actor == "non_member":
        return of_a.without(strings={str(world.a.invitation.pk)} | shared_by)
    return of_a


def _expected_status(request: ListRequest, actor: str) -> int:
    role = ISOLATION_ACTORS[actor]
    if role is None:
        return 200 if request.audience == "anyone" else 401
    if request.audience == "managers" and role not in (Role.OWNER, Role.ADMIN):
        return 403
    return 200


def _isolation_cases() -> Iterator[Any]:
    for request in LISTS:
        for actor in ISOLATION_ACTORS:
            if actor == "anonymous" and request.audience != "anyone":
                continue
            yield pytest.param(request, actor, id=f"GET {request.path} as {actor}")


@pytest.mark.parametrize(("request_", "actor"), list(_isolation_cases()))
def test_no_list_shows_another_workspaces_rows(world: World, request_: ListRequest, actor: str) -> None:
    home = world.home(actor)
    values = home.placeholders()
    response = send(client_as(world.actors[actor]), "GET", fill(request_.path, values))
    assert response.status_code == _expected_status(request_, actor), _describe(response)
    payload = response_json(response)
    raw = response.content.decode()
    found = leaks(payload, raw, world.forbidden[actor])
    assert not found, f"{actor} sees the other workspace's rows {found}: {raw[:500]}"
    if response.status_code == 200 and request_.shows:
        shown = values[request_.shows]
        assert shown in raw, f"the answer should list {request_.shows} ({shown}), so the check is not vacuous"


def test_every_list_route_is_checked_for_isolation() -> None:
    list_routes = {
        name for (name, method), action in api_routes().items() if method == "GET" and action in LIST_ACTIONS
    }
    checked = {route_of(request.path) for request in LISTS}
    assert not list_routes - checked, f"add these lists to LISTS: {sorted(list_routes - checked)}"


# --- lists show what the rules let each actor see ---------------------------------------------

# Whether a list shows an object: y listed, n not listed, - not asserted (no rule, or no access).
# fmt: off
#    list                               object                   own adm edi vie col non
LISTED: tuple[tuple[str, str, str], ...] = (
    ("workspaces/",                    "<ws>",                  "y y y y n n"),
    ("maps/",                          "<private>",             "y y n n y n"),
    ("maps/",                          "<workspace>",           "y y y y n n"),
    ("maps/",                          "<public>",              "y y y y - -"),
    ("maps/",                          "<editors-map>",         "y y y y n n"),
    ("layers/",                        "<private-layer>",       "y y n n y n"),
    ("layers/",                        "<workspace-layer>",     "y y y y n n"),
    ("layers/",                        "<library-layer>",       "y y y y n n"),
    ("comments/",                      "<private-comment>",     "y y n n y n"),
    ("comments/",                      "<workspace-comment>",   "y y y y n n"),
    ("comments/",                      "<public-comment>",      "y y y y - -"),
    ("jobs/",                          "<job>",                 "y y y n n n"),
    ("invitations/",                   "<invitation>",          "n n n n n y"),
    ("collaborations/",                "<grant>",               "n n n n y n"),
    ("collaborations/",                "<private-invitee>",     "n n n n n n"),
    ("workspaces/<ws>/invitations/",   "<invitation>",          "y y - - - -"),
    ("maps/<private>/collaborators/",  "<grant>",               "y y - - - -"),
    ("maps/<private>/layers/",         "<private-layer>",       "y y - - y -"),
    ("layers/<private-layer>/features/", "<private-feature>",   "y y - - y -"),
)
# fmt: on


def _listed_cases() -> Iterator[Any]:
    for path, target, flags in LISTED:
        for actor, flag in zip(ACTORS, flags.split(), strict=False):
            if flag != "-":
                shown = "shows" if flag == "y" else "hides"
                yield pytest.param(path, target, flag == "y", actor, id=f"GET {path} {shown} {target} to {actor}")


@pytest.mark.parametrize(("path", "target", "listed", "actor"), list(_listed_cases()))
def test_lists_show_each_actor_exactly_what_they_may_see(
    world: World, path: str, target: str, listed: bool, actor: str
) -> None:
    values = world.placeholders()
    response = send(client_as(world.actors[actor]), "GET", fill(path, values))
    assert response.status_code == 200, _describe(response)
    assert (values[target] in response.content.decode()) is listed, response.content[:500]


# --- vector tiles: the same rules as reading the layer, on every tile route ------------------

# fmt: off
TILE_POLICY: tuple[Row, ...] = (
    #                                                                        own adm edi vie col non ano
    row("GET",    "layers/<private-layer>/0/0/0.mvt",                       "200 200 404 404 200 404 404"),
    row("GET",    "layers/<workspace-layer>/0/0/0.mvt",                     "200 200 200 200 404 404 404"),
    row("GET",    "layers/<public-layer>/0/0/0.mvt",                        "200 200 200 200 200 200 200"),
    row("GET",    "layers/<library-layer>/0/0/0.mvt",                       "200 200 200 200 404 404 404"),
    row("GET",    "layers/<b-workspace-layer>/0/0/0.mvt",                   "404 404 404 404 200 200 404"),
    row("GET",    "layers/<b-public-layer>/0/0/0.mvt",                      "200 200 200 200 200 200 200"),
    row("GET",    "layers/<private-layer>.json",                            "200 200 404 404 200 404 404"),
    row("GET",    "layers/<workspace-layer>.json",                          "200 200 200 200 404 404 404"),
    row("GET",    "layers/<public-layer>.json",                             "200 200 200 200 200 200 200"),
    row("GET",    "layers/<b-workspace-layer>.json",                        "404 404 404 404 200 200 404"),
)
# fmt: on
TILE_ROUTE_NAMES = {"layer-tile", "layer-tilejson"}


@pytest.mark.parametrize(
    ("entry", "actor"), [pytest.param(e, a, id=f"tiles/{e.label} as {a}") for e in TILE_POLICY for a in ACTORS]
)
def test_each_tile_route_answers_each_actor_as_the_rules_say(world: World, entry: Row, actor: str) -> None:
    response = client_as(world.actors[actor]).get("/tiles/" + fill(entry.path, world.placeholders()))
    assert response.status_code == entry.expected[actor], _describe(response)


def test_every_tile_route_has_policy_rows() -> None:
    from django.urls import resolve

    covered = {resolve("/tiles/" + fill(e.path, SAMPLE_PLACEHOLDERS)).url_name for e in TILE_POLICY}
    from django.urls import get_resolver

    served = {
        pattern.name for route, pattern in walk_patterns(get_resolver().url_patterns) if route.startswith("tiles/")
    }
    assert served == TILE_ROUTE_NAMES == covered
