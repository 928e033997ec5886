"""The world the authorization matrix runs in: workspace A with everything in it, and B beside it.

Actors (the matrix's columns):
- owner, admin, editor, viewer: members of A with that role;
- collaborator: an editor of B with an accepted `edit` grant on A's private map and nothing else in A;
- non_member: a viewer of B with nothing in A (A's pending invitation is addressed to them);
- anonymous: nobody signed in.

Every map, layer and comment of A is created by A's owner, except the editor's own map and the
viewer's comment, which exist to show what a creator or an author may do. Feature ids are fixed and
far above any sequence value, so an integer found in a response can be traced to exactly one side.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.apps import apps

from apps.accounts.models import ApiToken, User
from apps.accounts.services import api_token_create
from apps.collaboration.services import map_event_append
from apps.comments.models import Comment
from apps.jobs.models import Job, JobKind
from apps.layers.models import Feature, Layer
from apps.maps.models import Grant, Map, MapCollaborator, Visibility
from apps.workspaces.models import Invitation, Membership, Role, Workspace, WorkspaceOwned
from tests.factories import (
    CollaboratorFactory,
    CommentFactory,
    FeatureFactory,
    LayerFactory,
    MapFactory,
    MapLayerFactory,
    MembershipFactory,
    UserFactory,
    WorkspaceFactory,
)

ACTORS: tuple[str, ...] = ("owner", "admin", "editor", "viewer", "collaborator", "non_member", "anonymous")

MAP_KINDS: dict[str, str] = {
    "private": Visibility.PRIVATE,
    "workspace": Visibility.WORKSPACE,
    "public": Visibility.PUBLIC,
}

# What each placeholder of a path or body stands for, and the shape of its value (for resolving
# paths without a database). `<x>` is A's object; `<b-x>` is B's object of the same kind.
_SIDE_SHAPES: dict[str, str] = {
    "<ws>": "slug",
    "<private>": "uuid",
    "<workspace>": "uuid",
    "<public>": "uuid",
    "<editors-map>": "uuid",
    "<private-layer>": "uuid",
    "<workspace-layer>": "uuid",
    "<public-layer>": "uuid",
    "<library-layer>": "uuid",
    "<private-feature>": "int",
    "<workspace-feature>": "int",
    "<public-feature>": "int",
    "<library-feature>": "int",
    "<private-comment>": "uuid",
    "<workspace-comment>": "uuid",
    "<public-comment>": "uuid",
    "<viewers-comment>": "uuid",
    "<private-invitee>": "uuid",
    "<workspace-invitee>": "uuid",
    "<public-invitee>": "uuid",
    "<grant>": "uuid",
    "<invitation>": "uuid",
    "<job>": "uuid",
    "<owners-token>": "int",
    # users, by their id
    "<owner>": "int",
    "<admin>": "int",
    "<editor>": "int",
    "<viewer>": "int",
    "<admin2>": "int",
    "<viewer2>": "int",
}
PLACEHOLDER_SHAPES: dict[str, str] = (
    _SIDE_SHAPES
    | {f"<b-{name[1:]}": shape for name, shape in _SIDE_SHAPES.items()}
    | {"<b-collaborator>": "int", "<b-non_member>": "int"}
)
SAMPLE_VALUES = {"slug": "some-workspace", "uuid": "00000000-0000-4000-8000-000000000000", "int": "1"}


@dataclass
class Side:
    """One workspace and what lives in it."""

    workspace: Workspace
    users: dict[str, User]
    maps: dict[str, Map] = field(default_factory=dict)
    layers: dict[str, Layer] = field(default_factory=dict)
    features: dict[str, Feature] = field(default_factory=dict)
    comments: dict[str, Comment] = field(default_factory=dict)
    invitees: dict[str, MapCollaborator] = field(default_factory=dict)
    invitation: Invitation | None = None
    job: Job | None = None
    grant: MapCollaborator | None = None
    token: ApiToken | None = None

    def placeholders(self) -> dict[str, str]:
        values = {"<ws>": self.workspace.slug}
        for kind, map in self.maps.items():
            values["<editors-map>" if kind == "editors" else f"<{kind}>"] = str(map.pk)
        values |= {f"<{kind}-layer>": str(layer.pk) for kind, layer in self.layers.items()}
        values |= {f"<{kind}-feature>": str(feature.pk) for kind, feature in self.features.items()}
        values |= {f"<{kind}-comment>": str(comment.pk) for kind, comment in self.comments.items()}
        values |= {f"<{kind}-invitee>": str(entry.pk) for kind, entry in self.invitees.items()}
        optional = {
            "<grant>": self.grant,
            "<invitation>": self.invitation,
            "<job>": self.job,
            "<owners-token>": self.token,
        }
        values |= {name: str(obj.pk) for name, obj in optional.items() if obj is not None}
        values |= {f"<{label}>": str(user.pk) for label, user in self.users.items()}
        return values


@dataclass
class World:
    a: Side
    b: Side
    actors: dict[str, User | None]
    # actor → the other workspace's ids they must never be shown (filled in by the test module)
    forbidden: dict[str, Fingerprints] = field(default_factory=dict)

    def placeholders(self) -> dict[str, str]:
        """A's objects as `<x>`, B's as `<b-x>`."""
        return self.a.placeholders() | {f"<b-{name[1:]}": value for name, value in self.b.placeholders().items()}

    def home(self, actor: str) -> Side:
        """The workspace an actor belongs to."""
        return self.b if actor in ("collaborator", "non_member") or actor.startswith("b_") else self.a


def _user(label: str, side: str) -> User:
    return UserFactory(email=f"{label.replace('_', '-')}.{side}@example.test", name=f"{label} of {side}")


def _member(workspace: Workspace, user: User, role: str) -> User:
    MembershipFactory(workspace=workspace, user=user, role=role)
    return user


def _fill(side: Side, *, letter: str, creator: User, feature_ids: int, with_editors_map: bool) -> None:
    """Maps of each visibility with one point layer each, a library layer, features, comments, events."""
    workspace = side.workspace
    for kind, visibility in MAP_KINDS.items():
        map = MapFactory(workspace=workspace, visibility=visibility, created_by=creator, name=f"{kind} map")
        layer = LayerFactory(workspace=workspace, created_by=creator, name=f"{kind} layer", is_global=False)
        MapLayerFactory(map=map, layer=layer, workspace=workspace)
        side.maps[kind], side.layers[kind] = map, layer
        side.comments[kind] = CommentFactory(map=map, workspace=workspace, author=creator, body=f"On the {kind} map")
        side.invitees[kind] = CollaboratorFactory(
            map=map, workspace=workspace, user=None, email=f"invitee-{kind}-{letter}@example.test", accepted_at=None
        )
        map_event_append(
            workspace_id=workspace.pk,
            map_id=map.pk,
            type="map.layer_added",
            payload={"layer": str(layer.pk)},
            actor_id=creator.pk,
        )
    side.layers["library"] = LayerFactory(workspace=workspace, created_by=creator, name="library layer", is_global=True)
    for offset, (kind, layer) in enumerate(side.layers.items()):
        side.features[kind] = FeatureFactory(id=feature_ids + offset, layer=layer, workspace=workspace)
    if with_editors_map:
        side.maps["editors"] = MapFactory(
            workspace=workspace, visibility=Visibility.WORKSPACE, created_by=side.users["editor"], name="editor's map"
        )
    side.job = Job.objects.for_workspace(workspace).create(
        workspace=workspace, kind=JobKind.IMPORT, created_by=side.users.get("editor", creator)
    )


def build_world() -> World:
    """Both workspaces, every actor, every object the matrix and the isolation checks need."""
    workspace_a = WorkspaceFactory(name="Workspace A", slug="alpha-a7c3")
    workspace_b = WorkspaceFactory(name="Workspace B", slug="bravo-b9d1")

    roles_a = {"owner": Role.OWNER, "admin": Role.ADMIN, "editor": Role.EDITOR, "viewer": Role.VIEWER}
    roles_a |= {"admin2": Role.ADMIN, "viewer2": Role.VIEWER}
    users_a = {label: _member(workspace_a, _user(label, "a"), role) for label, role in roles_a.items()}
    roles_b = {"owner": Role.OWNER, "collaborator": Role.EDITOR, "non_member": Role.VIEWER}
    users_b = {label: _member(workspace_b, _user(label, "b"), role) for label, role in roles_b.items()}

    a = Side(workspace=workspace_a, users=users_a)
    _fill(a, letter="a", creator=users_a["owner"], feature_ids=7_100_000_000, with_editors_map=True)
    a.comments["viewers"] = CommentFactory(
        map=a.maps["workspace"], workspace=workspace_a, author=users_a["viewer"], body="A viewer's note"
    )
    a.grant = CollaboratorFactory(
        map=a.maps["private"],
        workspace=workspace_a,
        user=users_b["collaborator"],
        permission=Grant.EDIT,
        invited_by=users_a["owner"],
        accepted_at=datetime.now(UTC),
    )
    a.invitation = Invitation.objects.create(
        workspace=workspace_a, email=users_b["non_member"].email, role=Role.VIEWER, invited_by=users_a["owner"]
    )
    a.token, _key = api_token_create(user=users_a["owner"], name="laptop")

    b = Side(workspace=workspace_b, users=users_b)
    _fill(b, letter="b", creator=users_b["owner"], feature_ids=7_200_000_000, with_editors_map=False)
    b.invitation = Invitation.objects.create(
        workspace=workspace_b, email="someone@elsewhere.test", role=Role.VIEWER, invited_by=users_b["owner"]
    )
    b.token, _key = api_token_create(user=users_b["owner"], name="laptop")

    actors: dict[str, User | None] = {label: users_a[label] for label in ("owner", "admin", "editor", "viewer")}
    actors |= {"collaborator": users_b["collaborator"], "non_member": users_b["non_member"], "anonymous": None}
    actors["b_owner"] = users_b["owner"]
    return World(a=a, b=b, actors=actors)


# --- what belongs to a side ----------------------------------------------------------


@dataclass(frozen=True)
class Fingerprints:
    """Values that identify a side's rows in a response: strings (ids, slug, emails) and feature ids."""

    strings: frozenset[str]
    integers: frozenset[int]

    def without(
        self, *, strings: AbstractSet[str] = frozenset(), integers: AbstractSet[int] = frozenset()
    ) -> Fingerprints:
        return Fingerprints(self.strings - strings, self.integers - integers)


def fingerprints_of(side: Side, *, known_to_other_side: AbstractSet[int]) -> Fingerprints:
    """Every id of every row the workspace owns (read from the database, so new models count too).

    Integer primary keys are left out except features': the others (map layers, events) are small
    sequence numbers that collide with counts and orders and are not exposed as ids anyway.
    Members are included by email, except the users in `known_to_other_side` (ids), whom the other
    workspace may rightly show (a collaborator on one of its maps, an invitee).
    """
    workspace = side.workspace
    strings: set[str] = {str(workspace.pk), workspace.pk.hex, workspace.slug}
    for model in apps.get_models():
        if not issubclass(model, WorkspaceOwned):
            continue
        for pk in model.objects.for_workspace(workspace).values_list("pk", flat=True):
            if not isinstance(pk, int):
                strings |= {str(pk), getattr(pk, "hex", str(pk))}
    strings |= {str(pk) for pk in Invitation.objects.filter(workspace=workspace).values_list("pk", flat=True)}
    members = Membership.objects.filter(workspace=workspace).exclude(user_id__in=known_to_other_side)
    strings |= set(members.values_list("user__email", flat=True))
    integers = set(Feature.objects.for_workspace(workspace).values_list("pk", flat=True))
    return Fingerprints(frozenset(strings), frozenset(integers))


def leaks(payload: Any, raw: str, fingerprints: Fingerprints) -> list[str]:
    """The fingerprints found in a response: strings anywhere in its text, feature ids as JSON numbers."""
    found = sorted(value for value in fingerprints.strings if value in raw)
    found += sorted(str(n) for n in _integers_in(payload) & fingerprints.integers)
    return found


def _integers_in(payload: Any) -> set[int]:
    if isinstance(payload, bool):
        return set()
    if isinstance(payload, int):
        return {payload}
    if isinstance(payload, dict):
        return set().union(*(_integers_in(v) for v in payload.values())) if payload else set()
    if isinstance(payload, list):
        return set().union(*(_integers_in(v) for v in payload)) if payload else set()
    return set()
