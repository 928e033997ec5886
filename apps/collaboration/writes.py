"""Writes from the map socket: each authorised afresh, run through the service REST calls, answered once.

Feature writes run in the one transaction their service opens (no outer
transaction, so no savepoint pair around it); every other writer runs inside
one transaction opened by `write_reply`. The `ack`'s `seq` is that of the event
the write appended to this map, taken from the append itself.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.gis.geos import Point
from django.db import transaction

from apps.accounts.models import User
from apps.collaboration.models import MapEvent
from apps.collaboration.protocol import (
    Ack,
    CommentCreate,
    Conflict,
    Error,
    ErrorCode,
    FeatureCreate,
    FeatureDelete,
    FeatureUpdate,
    LayerAdd,
    LayerDisplay,
    LayerRemove,
    LayerReorder,
    LayerStyle,
    MapSettings,
    MapView,
    WriteMessage,
    out,
)
from apps.collaboration.selectors import SocketAdmission, map_last_seq, socket_admission
from apps.collaboration.services import appended_map_events
from apps.comments.selectors import comment_access, rights_on_map
from apps.comments.services import comment_create
from apps.core import errors
from apps.layers.selectors import LayerAccess, feature_in, layer_access, layer_access_lean
from apps.layers.services import FeatureInput, feature_delete, feature_update, features_create, layer_update
from apps.maps.permissions import LayerAction, MapAction
from apps.maps.selectors import map_layer_on
from apps.maps.services import map_layer_add, map_layer_remove, map_layer_update, map_layers_reorder, map_update
from apps.workspaces.tenancy import workspace_scope

Reply = dict[str, Any]

_ERROR_CODES: tuple[tuple[type[errors.ApplicationError], str], ...] = (
    (errors.NotFound, ErrorCode.NOT_FOUND),
    (errors.PermissionDenied, ErrorCode.FORBIDDEN),
    (errors.Conflict, ErrorCode.ALREADY_EXISTS),
)


def _error_reply(exc: errors.ApplicationError, client_msg_id: str | None) -> Reply:
    code = next((code for cls, code in _ERROR_CODES if isinstance(exc, cls)), ErrorCode.INVALID)
    return out(Error(code=code, message=exc.message, client_msg_id=client_msg_id, field=exc.field))


def write_reply(user: User, map_id: str, message: WriteMessage) -> Reply:
    """Authorise one write with the actor's current rights, run it through its service, answer it.

    Rights are reloaded per message rather than trusted from connect time, so a
    demotion takes effect on the very next write even before the socket hears of it.
    """
    try:
        # Feature writes only judge, log and ack on the map: its lean read is enough for them.
        admission = socket_admission(user, map_id, share_token=None, lean=message.type in _OWN_TRANSACTION)
        if admission is None:
            raise errors.NotFound()
        with workspace_scope(admission.map.workspace_id), appended_map_events() as appended:
            if message.type in _OWN_TRANSACTION:
                return _WRITERS[message.type](user, admission, message, appended)
            with transaction.atomic():
                return _WRITERS[message.type](user, admission, message, appended)
    except errors.ApplicationError as exc:
        return _error_reply(exc, message.client_msg_id)


def _ack(admission: SocketAdmission, message: WriteMessage, appended: list[MapEvent], **fields: Any) -> Reply:
    """Answers with the seq of the event this write appended to this map."""
    seqs = [event.seq for event in appended if event.map_id == admission.map.pk]
    # A write that changed nothing appended no event: inside its transaction, the map's newest seq.
    seq = seqs[-1] if seqs else map_last_seq(admission.map)
    return out(Ack(client_msg_id=message.client_msg_id, seq=seq, **fields))


def _require(admission: SocketAdmission, action: MapAction) -> None:
    # The same order as REST: first may you change this map at all, then is the layer yours to use.
    if action not in admission.actions:
        raise errors.PermissionDenied(f"You may not {action} this map.")


# --- features and comments ------------------------------------------------------------------


def _editable_layer(admission: SocketAdmission, layer_id: object, *, lean: bool = False) -> LayerAccess:
    # Only layers on this socket's map: the write's event must reach this map's log. The maps
    # holding the layer were loaded to judge access, so they answer that too (no query).
    # Feature writes take the lean layer (one query fewer per edit); a layer_update saves the whole row.
    judge = layer_access_lean if lean else layer_access
    access = judge(admission.actor, str(layer_id))
    if admission.map.pk not in {held.pk for held in access.maps}:
        raise errors.NotFound()
    if not access.allows(LayerAction.EDIT):
        raise errors.PermissionDenied(f"You may not {LayerAction.EDIT} this layer.")
    return access


def _conflict(access: LayerAccess, message: FeatureUpdate | FeatureDelete, exc: errors.ApplicationError) -> Reply:
    """Nothing was written; send the feature as it is now (None: it no longer exists)."""
    try:
        feature = feature_in(access.layer, message.feature_id)
    except errors.NotFound:
        current = None
    else:
        current = {
            "id": feature.pk,
            "layer": str(feature.layer_id),
            "version": feature.version,
            "geometry": json.loads(feature.geom.json),
            "properties": feature.properties,
        }
    return out(
        Conflict(
            client_msg_id=message.client_msg_id, feature_id=message.feature_id, message=exc.message, current=current
        )
    )


def _feature_create(user: User, admission: SocketAdmission, message: FeatureCreate, appended: list[MapEvent]) -> Reply:
    access = _editable_layer(admission, message.layer, lean=True)
    inputs = [FeatureInput(message.geometry, message.properties, message.external_id)]
    [feature] = features_create(access=access, user=user, inputs=inputs)
    return _ack(admission, message, appended, feature_id=feature.pk, version=feature.version)


def _feature_update(user: User, admission: SocketAdmission, message: FeatureUpdate, appended: list[MapEvent]) -> Reply:
    access = _editable_layer(admission, message.layer, lean=True)
    try:
        feature = feature_update(
            access=access,
            user=user,
            feature_id=message.feature_id,
            base_version=message.base_version,
            geometry=message.geometry,
            properties=message.properties,
            replace=message.replace,
        )
    except (errors.StaleVersion, errors.NotFound) as exc:
        return _conflict(access, message, exc)
    return _ack(admission, message, appended, feature_id=feature.pk, version=feature.version)


def _feature_delete(user: User, admission: SocketAdmission, message: FeatureDelete, appended: list[MapEvent]) -> Reply:
    access = _editable_layer(admission, message.layer, lean=True)
    try:
        feature_delete(access=access, user=user, feature_id=message.feature_id, base_version=message.base_version)
    except (errors.StaleVersion, errors.NotFound) as exc:
        return _conflict(access, message, exc)
    return _ack(admission, message, appended, feature_id=message.feature_id, version=message.base_version)


def _comment_create(user: User, admission: SocketAdmission, message: CommentCreate, appended: list[MapEvent]) -> Reply:
    parent = comment_access(admission.actor, message.parent)[0] if message.parent else None
    anchor = Point(message.anchor.lng, message.anchor.lat, srid=4326) if message.anchor else None
    comment = comment_create(
        user=user,
        rights=rights_on_map(admission.actor, admission.map),
        map=admission.map,
        body=message.body,
        parent=parent,
        anchor=anchor,
        anchor_zoom=message.anchor_zoom,
    )
    return _ack(admission, message, appended, comment_id=str(comment.pk))


# --- layers on the map ----------------------------------------------------------------------


def _layer_add(user: User, admission: SocketAdmission, message: LayerAdd, appended: list[MapEvent]) -> Reply:
    _require(admission, MapAction.EDIT)
    access = layer_access(admission.actor, str(message.layer))
    map_layer_add(
        actor=admission.actor,
        user=user,
        map=admission.map,
        layer=access.layer,
        layer_permissions=access.actions,
        **message.placement(),
    )
    return _ack(admission, message, appended, layer=str(message.layer))


def _layer_remove(user: User, admission: SocketAdmission, message: LayerRemove, appended: list[MapEvent]) -> Reply:
    _require(admission, MapAction.EDIT)
    map_layer_remove(actor=admission.actor, user=user, entry=map_layer_on(admission.map, str(message.layer)))
    return _ack(admission, message, appended, layer=str(message.layer))


def _layer_reorder(user: User, admission: SocketAdmission, message: LayerReorder, appended: list[MapEvent]) -> Reply:
    _require(admission, MapAction.EDIT)
    layer_ids = [str(layer_id) for layer_id in message.layers]
    map_layers_reorder(actor=admission.actor, user=user, map=admission.map, layer_ids=layer_ids)
    return _ack(admission, message, appended)


def _layer_display(user: User, admission: SocketAdmission, message: LayerDisplay, appended: list[MapEvent]) -> Reply:
    _require(admission, MapAction.EDIT)
    entry = map_layer_on(admission.map, str(message.layer))
    map_layer_update(actor=admission.actor, user=user, entry=entry, fields=message.changes())
    return _ack(admission, message, appended, layer=str(message.layer))


def _layer_style(user: User, admission: SocketAdmission, message: LayerStyle, appended: list[MapEvent]) -> Reply:
    _require(admission, MapAction.EDIT)
    layer_update(access=_editable_layer(admission, message.layer), user=user, fields=message.changes())
    return _ack(admission, message, appended, layer=str(message.layer))


# --- the map itself ---------------------------------------------------------------------------


def _map_view(user: User, admission: SocketAdmission, message: MapView, appended: list[MapEvent]) -> Reply:
    fields = message.changes()
    if center := fields.get("center"):
        fields["center"] = Point(center.lng, center.lat, srid=4326)
    map_update(actor=admission.actor, user=user, map=admission.map, fields=fields)
    return _ack(admission, message, appended)


def _map_settings(user: User, admission: SocketAdmission, message: MapSettings, appended: list[MapEvent]) -> Reply:
    # Which of edit or manage is needed depends on the fields; the service decides.
    map_update(actor=admission.actor, user=user, map=admission.map, fields=message.changes())
    return _ack(admission, message, appended)


# These open their one transaction in the service; a conflict is read after its rollback.
_OWN_TRANSACTION = frozenset({"feature.create", "feature.update", "feature.delete"})

_WRITERS: dict[str, Any] = {
    "feature.create": _feature_create,
    "feature.update": _feature_update,
    "feature.delete": _feature_delete,
    "comment.create": _comment_create,
    "layer.add": _layer_add,
    "layer.remove": _layer_remove,
    "layer.reorder": _layer_reorder,
    "layer.display": _layer_display,
    "layer.style": _layer_style,
    "map.view": _map_view,
    "map.settings": _map_settings,
}
