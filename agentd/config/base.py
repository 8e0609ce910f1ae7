"""Reading one config file: bounded, UTF-8, YAML, validated by a strict pydantic model.

A bad value raises ``ConfigError`` with one line naming the file, the key path and what was
expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from agentd.errors import ConfigError
from agentd.fileio import FileRefused, read_regular


class Model(BaseModel):
    """Every config model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=BaseModel)


def _format_error(path: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    more = len(err.errors()) - 1
    tail = f"; and {more} more" if more else ""
    return f"{path}: {where}: {first['msg']}{shown}{tail}"


MAX_CONFIG_BYTES = 4 * 1024 * 1024


def read_yaml(path: Path) -> Any:
    """Parse one config file: a regular file under ``MAX_CONFIG_BYTES``, UTF-8, not nested
    deep enough to exhaust the parser's recursion."""
    try:
        text = read_regular(path, MAX_CONFIG_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except FileRefused as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start})") from None
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line} invalid YAML: {getattr(exc, 'problem', exc)}") from None


def load_model(model: type[M], path: Path, *, missing_ok: bool = False) -> M:
    """Read and validate one YAML file into ``model``; an empty or absent file is defaults."""
    if missing_ok and not path.exists():
        return model()
    data = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from None
