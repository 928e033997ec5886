from __future__ import annotations

from datetime import datetime

from django.urls import reverse
from rest_framework import serializers

from apps.jobs.models import Job
from apps.jobs.retention import output_expires_at


class JobSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    output_url = serializers.SerializerMethodField()
    output_expires_at = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "workspace",
            "kind",
            "status",
            "progress",
            "phase",
            "params",
            "result",
            "error",
            "attempts",
            "map",
            "layer",
            "output_url",
            "output_expires_at",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_output_url(self, job: Job) -> str | None:
        # MEDIA is not served: the file comes through the jobs API, after the job's access check.
        return reverse("job-download", kwargs={"pk": job.pk}) if job.output_file else None

    def get_output_expires_at(self, job: Job) -> datetime | None:
        """When an export's file stops being downloadable (EXPORT_RETENTION_HOURS after it finished)."""
        return output_expires_at(job) if job.output_file else None
