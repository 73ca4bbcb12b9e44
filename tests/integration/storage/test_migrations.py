from __future__ import annotations

from pathlib import Path

import pytest

from ems.storage.factory import SqlStorage
from ems.storage.migrate import Migration, applied_versions, discover, upgrade
from ems.storage.postgres import POSTGRES
from ems.storage.sqlite import SQLITE


async def test_upgrade_is_idempotent_and_recorded(storage: SqlStorage) -> None:
    versions = [m.version for m in discover()]
    assert versions[0] == 1
    assert await applied_versions(storage.db) == versions
    assert await upgrade(storage.db) == []  # second run: nothing to do
    assert await upgrade(storage.db) == []
    rows = await storage.db.fetchall("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in discover()]
    assert all(r["applied_at"].tzinfo is not None for r in rows)


async def test_new_migration_applies_once_in_order(storage: SqlStorage) -> None:
    extra = [
        *discover(),
        Migration(9001, "extra", "CREATE TABLE extra (id {{identity}}, doc {{json}});\n{{sequence extra_seq}};"),
        Migration(9002, "more", "ALTER TABLE extra ADD COLUMN note TEXT;"),
    ]
    assert await upgrade(storage.db, extra) == [9001, 9002]
    assert await upgrade(storage.db, extra) == []
    async with storage.db.transaction() as tx:
        assert [await tx.next_value("extra_seq") for _ in range(2)] == [1, 2]
        await tx.execute("INSERT INTO extra (note) VALUES (?)", ("x",))


async def test_failed_migration_leaves_nothing_behind(storage: SqlStorage) -> None:
    broken = [*discover(), Migration(9001, "broken", "CREATE TABLE half (id INTEGER);\nSELECT * FROM no_such_table;")]
    with pytest.raises(Exception, match="no_such_table"):
        await upgrade(storage.db, broken)
    assert 9001 not in await applied_versions(storage.db)
    assert await upgrade(storage.db, [Migration(9001, "fixed", "CREATE TABLE half (id INTEGER);")]) == [9001]


def test_unknown_macro_is_an_error() -> None:
    for dialect in (SQLITE, POSTGRES):
        with pytest.raises(ValueError, match="unknown migration macro"):
            dialect.render("{{nope}}")


def test_discover_refuses_misnamed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fake_migrations"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "0001_a.sql").write_text("SELECT 1;")
    (package / "0001_a.postgresql.sql").write_text("SELECT 2;")
    monkeypatch.syspath_prepend(str(tmp_path))
    [migration] = discover("fake_migrations")
    assert migration.sql_for("postgresql").split() == ["SELECT", "1;", "SELECT", "2;"]
    assert migration.sql_for("sqlite").split() == ["SELECT", "1;"]
    (package / "2_bad.sql").write_text("")
    with pytest.raises(ValueError, match=r"2_bad\.sql"):
        discover("fake_migrations")
