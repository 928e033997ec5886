"""`manage.py import_file PATH --workspace SLUG --user EMAIL`: an operator's import, run in this process.

The same service as the API (`import_create`, then `import_execute`), so the same checks apply:
the user must be allowed to import into the workspace or layer, and the file passes the same
safety checks. The job is recorded like any other and is visible in the user's job list.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.models import User
from apps.core.errors import ApplicationError
from apps.imports import services
from apps.imports.types import ImportMode
from apps.imports.uploads import StoredUpload, import_directory
from apps.jobs.models import Job, JobStatus
from apps.maps.selectors import actor_for
from apps.workspaces.tenancy import workspace_scope


class Command(BaseCommand):
    help = "Import a vector file into a workspace (new layer, append, replace or upsert), synchronously."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")
        parser.add_argument("--user", required=True, help="Email of the person the import runs as.")
        parser.add_argument("--layer", type=uuid.UUID, help="append / replace / upsert: the layer's id.")
        parser.add_argument("--mode", choices=[m.value for m in ImportMode], default=ImportMode.NEW.value)
        parser.add_argument("--key", help="upsert: the attribute identifying a feature.")
        parser.add_argument("--delete-missing", action="store_true", help="upsert: delete features the file lacks.")
        parser.add_argument("--name", default="", help="new: the layer's name (default: the file's name).")
        parser.add_argument("--source-layer", help="The layer to read in a multi-layer file.")
        parser.add_argument(
            "--layers", nargs="+", metavar="NAME", help="new: several layers of a multi-layer file, or '*' for all."
        )
        parser.add_argument("--srid", type=int, help="EPSG code of a file without a CRS (or to override it).")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        user = User.objects.filter(email__iexact=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user with the email {options['user']!r}.")
        mode = ImportMode(options["mode"])
        data = services.ImportInput(
            workspace=options["workspace"], mode=mode, layer=options["layer"],
            name=options["name"] or (PurePosixPath(path.name).stem if mode == ImportMode.NEW else ""),
            source_layer=options["source_layer"], srid=options["srid"], key=options["key"],
            delete_missing=options["delete_missing"], layers=options["layers"],
        )  # fmt: skip
        job = self._run(data, user, path)
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(job.error or f"The import ended {job.status}.")
        self._print(job)

    def _run(self, data: services.ImportInput, user: User, path: Path) -> Job:
        job_id = uuid.uuid4()
        directory = import_directory(job_id)
        directory.mkdir(parents=True)
        # Our own name, as the upload handler does: the file's name never becomes a path.
        stored = directory / f"source{''.join(PurePosixPath(path.name.lower()).suffixes[-1:])[:16]}"
        shutil.copyfile(path, stored)
        upload = StoredUpload(path=stored, name=path.name, size=stored.stat().st_size)
        try:
            job = services.import_create(
                actor=actor_for(user), user=user, data=data, upload=upload, job_id=job_id, enqueue=False
            )
        except ApplicationError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            field = f"{exc.field}: " if exc.field else ""
            raise CommandError(f"{field}{exc.message}") from None
        with workspace_scope(job.workspace_id):
            services.import_execute(job=job)
        return Job.objects.unscoped().get(pk=job.pk)

    def _print(self, job: Job) -> None:
        result = job.result
        self.stdout.write(f"job {job.pk} succeeded: layer {result['layer']}")
        names = ("read", "imported", "repaired", "inserted", "updated", "unchanged", "deleted")
        for name in names:
            if name in result:
                self.stdout.write(f"  {name}: {result[name]}")
        for reason, count in sorted(result.get("skipped", {}).items()):
            self.stdout.write(f"  skipped ({reason}): {count}")
        layers = result.get("layer_results", [])
        for entry in layers if len(layers) > 1 else []:
            self.stdout.write(f"  layer {entry['layer']} {entry['name']!r}: {entry['imported']} of {entry['read']}")
