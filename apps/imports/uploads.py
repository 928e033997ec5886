"""The upload handler of POST /api/v1/imports/: the file goes straight to disk, never into memory.

Django's multipart parser hands each chunk (64 KiB) to `receive_data_chunk`, which
appends it to MEDIA_ROOT/imports/<job id>/upload/ and counts. An upload whose
Content-Length already exceeds the limit is refused before a byte is read; one that
grows past it while streaming is refused at that chunk and its partial file removed.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler

from apps.imports.errors import ImportRefused, UploadTooLarge
from apps.imports.safety import remove_tree

FILE_FIELD = "file"
FORM_OVERHEAD_BYTES = 64 * 1024  # boundaries, headers and the small form fields around the file
DEFAULT_MAX_BYTES = 1024**3


def import_max_bytes() -> int:
    return int(getattr(settings, "IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


def import_directory(job_id: object) -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / str(job_id)


class StoredUpload:
    """The uploaded file as it lies on disk (what `request.FILES["file"]` holds for imports)."""

    def __init__(self, *, path: Path, name: str, size: int) -> None:
        self.path, self.name, self.size = path, name, size

    def close(self) -> None:  # Django closes every uploaded file at the end of the request
        pass


class ImportUploadHandler(FileUploadHandler):
    def __init__(self, request: Any = None, *, directory: Path, max_bytes: int) -> None:
        super().__init__(request)
        self.directory = directory
        self.max_bytes = max_bytes
        self.stored: StoredUpload | None = None
        self._file: Any = None
        self._path: Path | None = None
        self._size = 0

    def _too_large(self) -> UploadTooLarge:
        return UploadTooLarge(f"The file is larger than the {self.max_bytes} bytes an import may have.")

    def handle_raw_input(
        self, input_data: Any, meta: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        if content_length and content_length > self.max_bytes + FORM_OVERHEAD_BYTES:
            raise self._too_large()

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != FILE_FIELD or self._path is not None:
            raise ImportRefused(f"Send exactly one file, in the field {FILE_FIELD!r}.", field=FILE_FIELD)
        suffix = "".join(PurePosixPath(file_name.lower()).suffixes[-1:])[:16]
        upload_dir = self.directory / "upload"
        upload_dir.mkdir(parents=True, exist_ok=True)
        # Our own name: the user's file name never becomes a path.
        self._path = upload_dir / f"source{suffix}"
        self._file = self._path.open("xb")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self._size += len(raw_data)
        if self._size > self.max_bytes:
            self.discard()
            raise self._too_large()
        self._file.write(raw_data)

    def file_complete(self, file_size: int) -> StoredUpload:
        self._file.close()
        assert self._path is not None
        self.stored = StoredUpload(path=self._path, name=self.file_name or "", size=file_size)
        return self.stored

    def upload_complete(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()

    def discard(self) -> None:
        """Remove everything this upload wrote (refused, unauthorised or failed requests)."""
        if self._file is not None and not self._file.closed:
            self._file.close()
        remove_tree(self.directory)
