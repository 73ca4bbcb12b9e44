"""Analysts read the views with a read-only role (PostgreSQL) and rebuild-rollups runs from the CLI (issue 14)."""

from __future__ import annotations

import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ems.domain.session import Measurand, MeterSample
from ems.errors import InvalidInput
from ems.storage.analyst_role import create_analyst_role
from ems.storage.factory import SqlStorage
from tests.integration.cli.test_cli import env_for

T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)


async def test_the_analyst_role_reads_the_views_and_cannot_write(
    pg_storage: SqlStorage, pg_url: str, pg_schema_url: str
) -> None:
    await pg_storage.samples.add_many(
        [
            MeterSample("CP1", 1, T0, Measurand.POWER_IMPORT, 1000.0),
            MeterSample("CP1", 1, T0, Measurand.POWER_IMPORT, 2.0, phase="L1"),
        ]
    )
    role = f"ems_test_analyst_{secrets.token_hex(4)}"
    schema = await create_analyst_role(pg_storage.db, role, None)
    try:
        async with await psycopg.AsyncConnection.connect(pg_url, user=role, autocommit=True) as conn:
            await conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
            rows = await (await conn.execute("SELECT power_avg_w, l1_avg_w FROM analytics_evse_5min")).fetchall()
            assert rows == [(1000.0, 2.0)]
            for statement in (
                "INSERT INTO rollup_site_5min (site_id, bucket_s) VALUES ('x', 0)",
                "DELETE FROM meter_samples",
                "UPDATE rollup_evse_5min SET energy_mwh = 0",
                "CREATE TABLE mine (x INTEGER)",
            ):
                with pytest.raises(psycopg.Error) as caught:
                    await conn.execute(statement)
                assert isinstance(
                    caught.value, psycopg.errors.ReadOnlySqlTransaction | psycopg.errors.InsufficientPrivilege
                )
            await conn.execute("SET default_transaction_read_only = off")  # even so: no privilege
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute("INSERT INTO rollup_site_5min (site_id, bucket_s) VALUES ('x', 0)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute("SELECT * FROM cards")  # not for analysts
        assert await pg_storage.db.fetchone("SELECT count(*) AS n FROM rollup_site_5min") == {"n": 1}
    finally:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            await conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def test_sqlite_has_no_roles(sqlite_storage: SqlStorage) -> None:
    with pytest.raises(InvalidInput):
        await create_analyst_role(sqlite_storage.db, "bi", None)


@pytest.mark.slow
def test_rebuild_rollups_from_the_command_line(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    run = [sys.executable, "-m", "ems", "db", "rebuild-rollups"]
    r = subprocess.run(run, env=env, cwd=Path(__file__).parents[3], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0 samples, 0 status changes, 0 sessions priced" in r.stdout
