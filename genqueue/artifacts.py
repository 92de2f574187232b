"""ArtifactStore: files tasks produce (PNG, MP4, JSON), on any fsspec URL (local by default).

Artifacts live at ``<root>/<task_id>/<name>`` and are served by the API at
``/v1/artifacts/<task_id>/<name>``, so several machines sharing one root (S3, NFS) serve the
same URLs.
"""

from __future__ import annotations

import re
import time
from typing import Any

import fsspec

from genqueue.errors import FieldProblem, InvalidInputError, TaskNotFoundError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def artifact_url(task_id: str, name: str) -> str:
    return f"/v1/artifacts/{task_id}/{name}"


def check_name(value: str, what: str) -> str:
    """Refuse anything that could walk out of the artifact root."""
    if not _SAFE_NAME.match(value) or ".." in value:
        raise InvalidInputError([FieldProblem(what, f"not a valid artifact {what}: {value!r}")])
    return value


class ArtifactStore:
    """Files by task on an fsspec filesystem."""

    def __init__(self, root: str) -> None:
        self.root_url = root
        fs, path = fsspec.core.url_to_fs(root)
        self._fs: Any = fs
        self._root: str = str(path).rstrip("/")
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self._local = "file" in protocols

    def _path(self, task_id: str, name: str | None = None) -> str:
        base = f"{self._root}/{check_name(task_id, 'task id')}"
        return base if name is None else f"{base}/{check_name(name, 'name')}"

    def save(self, task_id: str, name: str, data: bytes) -> str:
        """Write an artifact and return the URL path that serves it."""
        self._fs.makedirs(self._path(task_id), exist_ok=True)
        self._fs.pipe_file(self._path(task_id, name), data)
        return artifact_url(task_id, name)

    def read(self, task_id: str, name: str) -> bytes:
        path = self._path(task_id, name)
        if not self._fs.exists(path):
            raise TaskNotFoundError(f"no artifact {name!r} for task {task_id!r}")
        data: bytes = self._fs.cat_file(path)
        return data

    def local_path(self, task_id: str, name: str) -> str | None:
        """A filesystem path when the root is local (served with sendfile), else None."""
        path = self._path(task_id, name)
        if not self._local or not self._fs.exists(path):
            return None
        return path

    def delete(self, task_id: str) -> None:
        path = self._path(task_id)
        if self._fs.exists(path):
            self._fs.rm(path, recursive=True)

    def purge(self, older_than_s: float) -> int:
        """Remove task folders whose files are all older than the cutoff (retention)."""
        if not self._fs.exists(self._root):
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for entry in self._fs.ls(self._root, detail=True):
            if entry["type"] != "directory":
                continue
            files = self._fs.ls(entry["name"], detail=True)
            if all(_mtime(f) < cutoff for f in files):
                self._fs.rm(entry["name"], recursive=True)
                removed += 1
        return removed


def _mtime(entry: dict[str, Any]) -> float:
    value = entry.get("mtime") or entry.get("LastModified") or entry.get("created") or 0.0
    return value.timestamp() if hasattr(value, "timestamp") else float(value)
