"""The map socket's JSON protocol: every message in and out, as pydantic v2 schemas.

Client messages are one discriminated union on `type` (as uMap's
`sync/payloads.py`), validated straight from the JSON text in strict mode, so
nothing the schema does not name reaches a service. `docs/PROTOCOL.md` is the
prose version of this module; keep them together.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from apps.maps.models import Basemap, Visibility

MAX_MESSAGE_BYTES = 64 * 1024
MAX_SELECTION = 500
MAX_LAYERS = 500
CLIENT_MSG_ID_MAX = 64


class ErrorCode:
    """The `code` of an `error` message (PROTOCOL.md lists what each means)."""

    INVALID_JSON = "invalid_json"
    TOO_LARGE = "too_large"
    BINARY_UNSUPPORTED = "binary_unsupported"
    UNKNOWN_TYPE = "unknown_type"
    INVALID = "invalid"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"


class CloseCode:
    NOT_FOUND = 4404  # unknown map, or one this connection may not see (never told apart)
    ACCESS_REVOKED = 4403  # access was withdrawn while connected
    UNAUTHENTICATED = 4401  # the token names no active API token, or (on /ws/me/) nobody is signed in


# --- client → server ------------------------------------------------------------------

Longitude = Annotated[float, Field(ge=-180, le=180)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
FeatureId = Annotated[int, Field(ge=1)]
Version = Annotated[int, Field(ge=1)]


class _ClientMessage(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class _WriteMessage(_ClientMessage):
    """A message that changes data: answered by exactly one ack, conflict or error carrying `client_msg_id`."""

    client_msg_id: str = Field(min_length=1, max_length=CLIENT_MSG_ID_MAX)


class Hello(_ClientMessage):
    type: Literal["hello"]
    last_seq: Annotated[int, Field(ge=0)] | None = None


class Cursor(_ClientMessage):
    type: Literal["cursor"]
    lng: Longitude
    lat: Latitude


class Selection(_ClientMessage):
    type: Literal["selection"]
    feature_ids: list[FeatureId] = Field(max_length=MAX_SELECTION)


class FeatureCreate(_WriteMessage):
    type: Literal["feature.create"]
    layer: UUID
    geometry: dict[str, Any]
    properties: dict[str, Any] = Field(default_factory=dict)
    external_id: str | None = Field(default=None, max_length=255)


class FeatureUpdate(_WriteMessage):
    type: Literal["feature.update"]
    layer: UUID
    feature_id: FeatureId
    base_version: Version
    geometry: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    replace: bool = False  # true: geometry and properties replace; false: properties merge (null removes)


class FeatureDelete(_WriteMessage):
    type: Literal["feature.delete"]
    layer: UUID
    feature_id: FeatureId
    base_version: Version


class LngLat(_ClientMessage):
    lng: Longitude
    lat: Latitude


class CommentCreate(_WriteMessage):
    type: Literal["comment.create"]
    body: str = Field(min_length=1, max_length=10_000)
    parent: UUID | None = None
    anchor: LngLat | None = None
    anchor_zoom: Annotated[float, Field(ge=0, le=24)] | None = None


Opacity = Annotated[float, Field(ge=0, le=1)]


class _ChangeMessage(_WriteMessage):
    """A write that sets some of `CHANGEABLE`: at least one, and a null means "leave as is"."""

    CHANGEABLE: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _changes_something(self) -> _ChangeMessage:
        if not self.changes():
            raise ValueError(f"send at least one of: {', '.join(self.CHANGEABLE)}")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: value for name in self.CHANGEABLE if (value := getattr(self, name)) is not None}


class LayerAdd(_WriteMessage):
    """Put a layer the sender can see (the workspace library, another map) on this map."""

    type: Literal["layer.add"]
    layer: UUID
    display_order: Annotated[int, Field(ge=0)] | None = None
    is_visible: bool | None = None
    opacity: Opacity | None = None

    def placement(self) -> dict[str, Any]:
        fields = {"display_order": self.display_order, "is_visible": self.is_visible, "opacity": self.opacity}
        return {name: value for name, value in fields.items() if value is not None}


class LayerRemove(_WriteMessage):
    type: Literal["layer.remove"]
    layer: UUID


class LayerReorder(_WriteMessage):
    type: Literal["layer.reorder"]
    layers: list[UUID] = Field(min_length=1, max_length=MAX_LAYERS)  # every layer on the map, bottom first


class LayerDisplay(_ChangeMessage):
    """How this map shows one of its layers (the saved default every viewer starts from)."""

    CHANGEABLE = ("is_visible", "opacity")
    type: Literal["layer.display"]
    layer: UUID
    is_visible: bool | None = None
    opacity: Opacity | None = None


class LayerStyle(_ChangeMessage):
    """The layer's own style and legend: every map showing the layer changes with it."""

    CHANGEABLE = ("style_config", "legend_config")
    type: Literal["layer.style"]
    layer: UUID
    style_config: dict[str, Any] | None = None  # validated by the layer service (apps/layers/configs.py)
    legend_config: dict[str, Any] | None = None


class MapView(_ChangeMessage):
    """The map's saved view, where everyone opening it starts."""

    CHANGEABLE = ("center", "zoom", "bearing", "pitch")
    type: Literal["map.view"]
    center: LngLat | None = None
    zoom: Annotated[float, Field(ge=0, le=24)] | None = None
    bearing: Annotated[float, Field(ge=-180, le=360)] | None = None
    pitch: Annotated[float, Field(ge=0, le=85)] | None = None


class MapSettings(_ChangeMessage):
    """Name, description and basemap need `edit`; visibility needs `manage`."""

    CHANGEABLE = ("name", "description", "basemap", "visibility")
    type: Literal["map.settings"]
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    basemap: Basemap | None = None
    visibility: Visibility | None = None


WriteMessage = (
    FeatureCreate
    | FeatureUpdate
    | FeatureDelete
    | CommentCreate
    | LayerAdd
    | LayerRemove
    | LayerReorder
    | LayerDisplay
    | LayerStyle
    | MapView
    | MapSettings
)
ClientMessage = Annotated[Hello | Cursor | Selection | WriteMessage, Field(discriminator="type")]
_CLIENT_MESSAGE: TypeAdapter[Any] = TypeAdapter(ClientMessage)


class ProtocolError(Exception):
    """An inbound message refused before any service saw it."""

    def __init__(
        self, code: str, message: str, *, client_msg_id: str | None = None, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_msg_id = client_msg_id
        self.details = details or []


def parse_client_message(text: str) -> Any:
    """Validate one text frame. Raises `ProtocolError` with the code the client should see."""
    if len(text) > MAX_MESSAGE_BYTES or len(text.encode()) > MAX_MESSAGE_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"Messages are limited to {MAX_MESSAGE_BYTES} bytes.")
    try:
        return _CLIENT_MESSAGE.validate_json(text)
    except ValidationError as exc:
        raise _protocol_error(exc, text) from None


def _protocol_error(exc: ValidationError, text: str) -> ProtocolError:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    kinds = {error["type"] for error in errors}
    client_msg_id = _client_msg_id_of(text)
    if "json_invalid" in kinds:
        return ProtocolError(ErrorCode.INVALID_JSON, "The message is not valid JSON.")
    if "union_tag_invalid" in kinds:
        return ProtocolError(ErrorCode.UNKNOWN_TYPE, "Unknown message type.", client_msg_id=client_msg_id)
    details = [{"loc": [str(part) for part in error["loc"][1:]], "msg": error["msg"]} for error in errors]
    return ProtocolError(
        ErrorCode.INVALID, "The message does not match its schema.", client_msg_id=client_msg_id, details=details
    )


def _client_msg_id_of(text: str) -> str | None:
    """Best effort, for echoing in the error: only a short string id is echoed back."""
    try:
        value = json.loads(text).get("client_msg_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and len(value) <= CLIENT_MSG_ID_MAX else None


# --- server → client --------------------------------------------------------------------


class _ServerMessage(BaseModel):
    model_config = ConfigDict(frozen=True)


class PresenceMember(BaseModel):
    """One open connection of a signed-in person (a person with two tabs is two members)."""

    connection_id: str
    user_id: int
    name: str
    colour: str
    role: str | None  # workspace role, if a member
    grant: str | None  # per-map grant, if a collaborator
    selection: list[int] = Field(default_factory=list)


class PresenceState(_ServerMessage):
    type: Literal["presence.state"] = "presence.state"
    connection_id: str
    you: PresenceMember | None  # None for anonymous visitors, who are not shown to others
    members: list[PresenceMember]
    permissions: list[str]
    last_seq: int


class PresenceJoin(_ServerMessage):
    type: Literal["presence.join"] = "presence.join"
    member: PresenceMember


class PresenceLeave(_ServerMessage):
    type: Literal["presence.leave"] = "presence.leave"
    connection_id: str
    user_id: int | None = None


class CursorPosition(_ServerMessage):
    """One connection's newest cursor position: an entry of `cursors`."""

    connection_id: str
    user_id: int
    lng: float
    lat: float


class Cursors(_ServerMessage):
    """The cursors that moved in one coalescing window, in one frame (a frame per cursor cost too much)."""

    type: Literal["cursors"] = "cursors"
    cursors: list[CursorPosition]


class SelectionChanged(_ServerMessage):
    type: Literal["selection"] = "selection"
    connection_id: str
    user_id: int
    feature_ids: list[int]


class Ack(_ServerMessage):
    type: Literal["ack"] = "ack"
    client_msg_id: str
    seq: int | None = None  # the MapEvent the write appended to this map
    feature_id: int | None = None
    version: int | None = None
    comment_id: str | None = None
    layer: str | None = None


class Conflict(_ServerMessage):
    """A compare-and-swap lost: nothing was written; `current` is the feature now (None: deleted)."""

    type: Literal["conflict"] = "conflict"
    client_msg_id: str
    feature_id: int
    message: str
    current: dict[str, Any] | None


class Error(_ServerMessage):
    type: Literal["error"] = "error"
    code: str
    message: str
    client_msg_id: str | None = None
    field: str | None = None
    details: list[dict[str, Any]] = Field(default_factory=list)


class Synced(_ServerMessage):
    type: Literal["synced"] = "synced"
    last_seq: int


class Resync(_ServerMessage):
    type: Literal["resync"] = "resync"
    last_seq: int
    reason: str


class Permissions(_ServerMessage):
    type: Literal["permissions"] = "permissions"
    permissions: list[str]


class JobProgress(_ServerMessage):
    """A background job's state. Its owner gets `error`; others on a map showing its layer do not."""

    type: Literal["job"] = "job"
    job_id: str
    kind: str
    status: str
    progress: int
    phase: str
    layer: str | None
    map: str | None
    error: str | None = None


class Ready(_ServerMessage):
    """The first message on `/ws/me/`: whose socket it is."""

    type: Literal["ready"] = "ready"
    user_id: int


def out(message: BaseModel) -> dict[str, Any]:
    return message.model_dump(mode="json")
