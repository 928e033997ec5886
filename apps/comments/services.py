"""Writes for comments: threads one level deep, resolve / reopen, edits by the author."""

from __future__ import annotations

from typing import Any

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.collaboration.services import map_event_append, map_events_append
from apps.comments.models import Comment
from apps.comments.selectors import TargetRights
from apps.core.errors import ApplicationError, PermissionDenied
from apps.layers.models import Feature, Layer
from apps.layers.selectors import maps_holding
from apps.maps.models import Map
from apps.maps.permissions import CommentAction


def _comment_event(comment: Comment, user: User, type: str) -> None:
    payload: dict[str, Any] = {
        "comment": str(comment.pk),
        "parent": str(comment.parent_id) if comment.parent_id else None,
        "feature": comment.feature_id,
        "is_resolved": comment.is_resolved,
    }
    if comment.map_id:
        map_event_append(
            workspace_id=comment.workspace_id, map_id=comment.map_id, type=type, payload=payload, actor_id=user.pk
        )
    else:
        map_ids = [m.pk for m in maps_holding(comment.layer)]
        if map_ids:
            map_events_append(
                workspace_id=comment.workspace_id,
                map_ids=map_ids,
                type=type,
                payload={**payload, "layer": str(comment.layer_id)},
                actor_id=user.pk,
            )


@transaction.atomic
def comment_create(
    *,
    user: User,
    rights: TargetRights,
    map: Map | None = None,
    layer: Layer | None = None,
    body: str,
    parent: Comment | None = None,
    feature: Feature | None = None,
    anchor: Point | None = None,
    anchor_zoom: float | None = None,
) -> Comment:
    """Comment on a map or a layer (exactly one), optionally on a feature of it or at a point."""
    if not rights.commentable:
        raise PermissionDenied("You may not comment here.")
    target = map or layer
    if target is None or (map is not None and layer is not None):
        raise ApplicationError("Give either a map or a layer.", field="map")
    if not body.strip():
        raise ApplicationError("A comment needs some text.", field="body")
    if parent is not None:
        if parent.parent_id is not None:
            parent = parent.parent  # threads are one level deep: reply to the thread's root
        if (parent.map_id, parent.layer_id) != (getattr(map, "pk", None), getattr(layer, "pk", None)):
            raise ApplicationError("A reply must be on the same map or layer as its thread.", field="parent")
    if feature is not None and layer is not None and feature.layer_id != layer.pk:
        raise ApplicationError("The feature is not in this layer.", field="feature")
    comment = Comment.objects.for_workspace(target.workspace_id).create(
        workspace_id=target.workspace_id,
        map=map,
        layer=layer,
        body=body,
        parent=parent,
        feature=feature,
        anchor=anchor,
        anchor_zoom=anchor_zoom,
        author=user,
    )
    _comment_event(comment, user, "comment.created")
    return comment


def _require(actions: frozenset[CommentAction], action: CommentAction) -> None:
    if action not in actions:
        raise PermissionDenied(f"You may not {action} this comment.")


@transaction.atomic
def comment_update(*, user: User, comment: Comment, actions: frozenset[CommentAction], body: str) -> Comment:
    _require(actions, CommentAction.EDIT)
    if not body.strip():
        raise ApplicationError("A comment needs some text.", field="body")
    comment.body = body
    comment.edited_at = timezone.now()
    comment.save(update_fields=["body", "edited_at", "updated_at"])
    _comment_event(comment, user, "comment.updated")
    return comment


@transaction.atomic
def comment_delete(*, user: User, comment: Comment, actions: frozenset[CommentAction]) -> None:
    _require(actions, CommentAction.DELETE)
    _comment_event(comment, user, "comment.deleted")
    comment.delete()


@transaction.atomic
def comment_set_resolved(*, user: User, comment: Comment, actions: frozenset[CommentAction], resolved: bool) -> Comment:
    """Resolve or reopen a thread (replies follow their root)."""
    _require(actions, CommentAction.RESOLVE)
    if comment.parent_id is not None:
        raise ApplicationError("Resolve the thread, not a reply.", field="comment")
    comment.is_resolved = resolved
    comment.resolved_by = user if resolved else None
    comment.resolved_at = timezone.now() if resolved else None
    comment.save(update_fields=["is_resolved", "resolved_by", "resolved_at", "updated_at"])
    _comment_event(comment, user, "comment.resolved" if resolved else "comment.reopened")
    return comment
