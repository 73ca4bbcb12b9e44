"""Mapping frozen dataclasses to table rows and back, when column names equal field names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from functools import cache
from operator import attrgetter
from typing import Any, TypeVar

from ems.storage.db import Row

T = TypeVar("T")


def field_names(cls: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@cache
def _getter(names: tuple[str, ...]) -> Callable[[object], Any]:
    return attrgetter(*names)


def values(obj: object, names: tuple[str, ...]) -> tuple[Any, ...]:
    """``obj``'s attributes ``names`` as a tuple (``attrgetter``: C speed, it matters for 100k-sample batches)."""
    got = _getter(names)(obj)
    return got if len(names) > 1 else (got,)


def build(cls: type[T], row: Row, convert: Mapping[str, Callable[[Any], Any]] | None = None) -> T:
    """``cls(**row)``, passing non-null values of the ``convert`` columns through their function (e.g. a StrEnum)."""
    if convert:
        row = dict(row)
        for name, fn in convert.items():
            if row[name] is not None:
                row[name] = fn(row[name])
    return cls(**row)


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


def select_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"SELECT {', '.join(columns)} FROM {table}"


def update_sql(table: str, columns: tuple[str, ...], key: str) -> str:
    """``UPDATE table SET c = ?, ... WHERE key = ?``: parameters are the non-key values, then the key."""
    assignments = ", ".join(f"{c} = ?" for c in columns if c != key)
    return f"UPDATE {table} SET {assignments} WHERE {key} = ?"
