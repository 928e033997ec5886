"""Reads for comments, and the rights an actor has on a comment's target."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from django.db.models import Count, Q, QuerySet

from apps.comments.models import Comment
from apps.core.errors import NotFound
from apps.layers.models import Layer
from apps.layers.selectors import layers_visible_to, maps_holding
from apps.maps.models import Map
from apps.maps.permissions import (
    Actor,
    CommentAction,
    LayerAction,
    MapAction,
    comment_actions,
    layer_actions,
    map_actions,
    may_comment_on_layer,
)
from apps.maps.selectors import maps_visible_to


@dataclass(frozen=True)
class TargetRights:
    """What the actor may do to the map or layer a comment is about."""

    viewable: bool
    commentable: bool
    manageable: bool


def rights_on_map(actor: Actor, map: Map) -> TargetRights:
    actions = map_actions(actor, map)
    return TargetRights(
        viewable=MapAction.VIEW in actions,
        commentable=actor.is_authenticated and MapAction.COMMENT in actions,
        manageable=MapAction.MANAGE in actions,
    )


def rights_on_layer(actor: Actor, layer: Layer) -> TargetRights:
    maps = maps_holding(layer)
    actions = layer_actions(actor, layer, maps)
    return TargetRights(
        viewable=LayerAction.VIEW in actions,
        commentable=may_comment_on_layer(actor, layer, maps),
        manageable=LayerAction.MANAGE in actions,
    )


def rights_on_target(actor: Actor, comment: Comment) -> TargetRights:
    return rights_on_map(actor, comment.map) if comment.map_id else rights_on_layer(actor, comment.layer)


def comment_access(actor: Actor, comment_id: UUID | str) -> tuple[Comment, frozenset[CommentAction]]:
    comment = (
        Comment.objects.unscoped()
        .select_related("map", "layer", "author", "resolved_by")
        .annotate(reply_count=Count("replies"))
        .filter(pk=comment_id)
        .first()
    )
    if comment is None:
        raise NotFound()
    rights = rights_on_target(actor, comment)
    actions = comment_actions(
        actor,
        comment,
        target_viewable=rights.viewable,
        target_commentable=rights.commentable,
        target_manageable=rights.manageable,
    )
    if CommentAction.VIEW not in actions:
        raise NotFound()
    return comment, actions


def comments_visible_to(actor: Actor) -> QuerySet[Comment]:
    """Comments on maps and layers the actor can see."""
    if not actor.is_authenticated:
        return Comment.objects.none()
    return (
        Comment.objects.unscoped()
        .filter(Q(map__in=maps_visible_to(actor).values("pk")) | Q(layer__in=layers_visible_to(actor).values("pk")))
        .select_related("author", "resolved_by")
        .annotate(reply_count=Count("replies"))
    )
