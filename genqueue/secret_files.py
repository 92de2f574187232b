"""``<NAME>_FILE``: any setting read from a file rather than from the environment.

Secrets (backend URLs with passwords, cloud keys, API keys) belong in files a service manager
or an orchestrator mounts (systemd ``LoadCredential=``, Docker and Kubernetes secrets), not in
the environment, where ``ps e``, ``/proc/<pid>/environ`` and crash reports show them. So next
to every variable ``NAME`` that sets a field, ``NAME_FILE`` names a file holding its value:
``GENQUEUE_STORE_FILE``, ``GENQUEUE_VIDEO__SECRET_KEY_FILE``, and the seeds' ``REDIS_PASSWORD_FILE``
or ``TENCENTCLOUD_SECRET_KEY_FILE`` (``genqueue/seed_env.py``). A field added later gets its
``_FILE`` variant for free: the source resolves names against the settings model, with no list
to keep up to date.

The value is the file's content without its trailing line break(s); a JSON field's file holds
JSON. A ``_FILE`` variable takes the place of its plain one: it wins over sources below it
(``.env``, the seed names) and loses to those above; setting both ``NAME`` and ``NAME_FILE`` in
the same place is a configuration error, as is a file that cannot be read, and the error names
the variable (never the content).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from genqueue.errors import ConfigError

SUFFIX = "_file"
Variables = Mapping[str, str | None]


def read_secret_file(variable: str, path: str) -> str:
    """The content of the file ``variable`` names, without its trailing line break(s)."""
    if not path.strip():
        raise ConfigError(f"{variable} is empty: set it to the path of a file holding the value")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path!r} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{variable}: {path!r} is not UTF-8 text") from None
    return text.rstrip("\r\n")


def variables_of(source: PydanticBaseSettingsSource) -> Variables:
    """The variables an environment or ``.env`` source read (names lower-cased)."""
    return source.env_vars if isinstance(source, EnvSettingsSource) else {}


def _target(model: type[BaseModel], parts: Sequence[str]) -> tuple[bool, FieldInfo | None]:
    """Whether ``parts`` (a nested field path) names a setting, and its field when known (a
    key inside a mapping field, ``limits__video-cloud__max``, is a setting of unknown type)."""
    field = model.model_fields.get(parts[0])
    if field is None:
        return False, None
    if len(parts) == 1:
        return True, field
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _target(annotation, parts[1:])
    return typing.get_origin(annotation) is dict, None


class FileValuesSource(PydanticBaseSettingsSource):
    """Values of ``<NAME>_FILE`` variables found in one place (the environment or ``.env``),
    read from their files; ``above`` are the places that win over it."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        variables: Variables,
        above: Sequence[Variables] = (),
    ) -> None:
        super().__init__(settings_cls)
        self._variables = variables
        self._above = above
        self._prefix = str(settings_cls.model_config.get("env_prefix") or "").lower()
        self._delimiter = settings_cls.model_config.get("env_nested_delimiter") or None

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole value

    def _path(self, name: str) -> list[str]:
        rest = name[len(self._prefix) :]
        return rest.split(self._delimiter) if self._delimiter else [rest]

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, path in self._variables.items():
            if path is None or not name.startswith(self._prefix) or not name.endswith(SUFFIX):
                continue
            if _target(self.settings_cls, self._path(name))[0]:
                continue  # a setting whose own name ends in _file
            plain = name[: -len(SUFFIX)]
            known, field = _target(self.settings_cls, self._path(plain))
            if not known:
                continue  # not a setting of this model (extra="ignore", as for plain names)
            if plain in self._variables:
                raise ConfigError(f"set {plain.upper()} or {name.upper()}, not both")
            if any(plain in higher or name in higher for higher in self._above):
                continue  # a place that wins sets it: the file would not be used
            value: Any = read_secret_file(name.upper(), path)
            if field is not None and self.field_is_complex(field):
                try:
                    value = json.loads(value)
                except ValueError as exc:
                    raise ConfigError(f"{name.upper()}: the file is not JSON ({exc})") from None
            _put(values, self._path(plain), value)
        return values


def _put(values: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    for part in parts[:-1]:
        values = values.setdefault(part, {})
    values[parts[-1]] = value
