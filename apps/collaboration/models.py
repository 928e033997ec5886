from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.workspaces.models import WorkspaceOwned


class MapEvent(WorkspaceOwned):
    """The append-only log of everything that happened to a map.

    `seq` is gapless and monotonic per map (taken from `Map.last_event_seq` in
    the writing transaction); it drives live sync, replay, the activity feed and undo.
    """

    id = models.BigAutoField(primary_key=True)
    map = models.ForeignKey("maps.Map", on_delete=models.CASCADE, related_name="events")
    seq = models.BigIntegerField()
    type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["map", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["map", "seq"], name="mapevent_unique_seq"),
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="mapevent_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.map_id}#{self.seq} {self.type}"
