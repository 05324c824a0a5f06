"""Find and read the shipped TOML data (converters/, profiles/) or a user's own file.

The folders live at the repo root and are force-included into the wheel as
``edgekit/_data/<kind>``; importlib.resources reads them from the installed package,
and a source checkout (editable install) falls back to the repo root.

``tomllib`` here is the stdlib module on Python 3.11+ and tomli on 3.10 (requires-python
admits 3.10): other modules that parse TOML import it from here, never directly.

Example:
    >>> sorted(list_names("converters"))[:3]
    ['dynamic', 'fp16', 'fp32']
"""

from __future__ import annotations

import sys
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import EdgekitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser as the tomli package (a dependency there)
    import tomli as tomllib


def data_dir(kind: str):
    """The folder of shipped files of one kind ('converters' or 'profiles')."""
    packaged = resources.files("edgekit") / "_data" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / kind


def list_names(kind: str) -> list[str]:
    d = data_dir(kind)
    return sorted(p.name[: -len(".toml")] for p in d.iterdir() if p.name.endswith(".toml"))


def read_named(kind: str, name_or_path: str | Path, error: type[EdgekitError]) -> tuple[dict[str, Any], str]:
    """Parse a shipped file by name, or a user's file by path. Returns (table, where)."""
    text_path = Path(name_or_path)
    looks_like_path = text_path.suffix == ".toml" or "/" in str(name_or_path) or "\\" in str(name_or_path)
    if looks_like_path:
        if not text_path.is_file():
            raise error(f"{text_path}: no such {kind[:-1]} file")
        where, raw = str(text_path), text_path.read_bytes()
    else:
        entry = data_dir(kind) / f"{name_or_path}.toml"
        if not entry.is_file():
            names = ", ".join(list_names(kind))
            raise error(f"unknown {kind[:-1]} {str(name_or_path)!r}; choose one of: {names} (or pass a .toml path)")
        where, raw = f"{kind}/{name_or_path}.toml", entry.read_bytes()
    try:
        return tomllib.loads(raw.decode("utf-8")), where
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise error(f"{where}: not valid TOML: {err}") from None


def _accepted(hint) -> tuple[type, ...]:
    """TOML value types that fit a dataclass field's type hint (tuple fields come as arrays)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (
        typing.Union, types.UnionType) else [hint]
    out: list[type] = []
    for a in args:
        base = typing.get_origin(a) or a
        out += [list] if base in (tuple, list) else [int, float] if base is float else [base]
    return tuple(out)


def check_keys(table: dict[str, Any], cls: type, where: str, error: type[EdgekitError]) -> None:
    """Refuse keys that are not fields of the dataclass ``cls``, and wrongly typed values, naming the key."""
    hints = typing.get_type_hints(cls)
    for key, value in table.items():
        if key not in hints:
            raise error(f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(hints))}")
        expected = _accepted(hints[key])
        if isinstance(value, bool) and bool not in expected:
            raise error(f"{where}: {key} must be a number, got {value!r}")
        if not isinstance(value, expected):
            names = "/".join(t.__name__ for t in expected)
            raise error(f"{where}: {key} must be {names}, got {value!r}")
