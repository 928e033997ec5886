from __future__ import annotations

from rest_framework import serializers

from apps.jobs.models import Job


class JobSerializer(serializers.ModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    output_url = serializers.SerializerMethodField()

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
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_output_url(self, job: Job) -> str | None:
        return job.output_file.url if job.output_file else None
