"""The load curve as JSON and as CSV made by the database (PostgreSQL) equals the rows made in Python
(issue 14); on SQLite the same methods write the rows."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from ems.csv_rows import csv_text
from ems.domain.session import Measurand, MeterSample
from ems.storage.analytics import _curve_params, _curve_sql
from ems.storage.factory import SqlStorage
from ems.storage.rollup_rules import Placement
from ems.storage.rollups import writer_for

T0 = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


async def _a_measured_and_planned_site(storage: SqlStorage, step_s: int) -> tuple[str, datetime, datetime, int]:
    rng = random.Random(step_s)
    writer = writer_for(storage.db)
    await writer.set_placement({"CP1": Placement("depot", "Europe/Stockholm")}, Placement("other", "UTC"))
    samples: list[MeterSample] = []
    wh = 0.0
    for k in range(40):  # 3 h 20 min of readings every 5 minutes, some buckets left out
        if k % 7 == 3:
            continue
        at = T0 + timedelta(seconds=300 * k + rng.randrange(300))
        wh += rng.uniform(0, 900)
        samples.append(MeterSample("CP1", 1, at, Measurand.ENERGY_IMPORT_REGISTER, round(wh, 3)))
        samples.append(MeterSample("CP1", 1, at, Measurand.POWER_IMPORT, rng.uniform(-50, 11_000), phase="L1"))
        samples.append(MeterSample("CP1", 1, at, Measurand.POWER_IMPORT, rng.uniform(0, 22_000)))
    await storage.samples.add_many(samples)
    # Planned load and capacity before, during and after the measured hours (planned-only rows too).
    for k in range(-6, 50):
        bucket = int((T0 + timedelta(seconds=300 * k)).timestamp())
        await writer.record_plan("depot", [(bucket, 1000.0 + k)], T0)
        await writer.record_capacity("depot", bucket, 40_000.0 - k, T0)
    return ("depot", T0 - timedelta(minutes=45), T0 + timedelta(hours=4), step_s)


@pytest.mark.parametrize("step_s", [300, 900, 3600])
async def test_the_json_answer_equals_the_rows(storage: SqlStorage, step_s: int) -> None:
    window = await _a_measured_and_planned_site(storage, step_s)

    rows = await storage.analytics.load_curve(*window)
    made = json.loads(await storage.analytics.load_curve_json(*window))

    assert len(rows) > 3 and any(r["load_w"] is None for r in rows)  # planned-only rows are in it
    assert [list(r) for r in made] == [list(r) for r in rows]  # the same keys, in the same order
    assert made == [{k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


@pytest.mark.parametrize("step_s", [300, 3600])
async def test_the_csv_answer_equals_the_rows_written_by_csv_text(storage: SqlStorage, step_s: int) -> None:
    window = await _a_measured_and_planned_site(storage, step_s)

    rows = await storage.analytics.load_curve(*window)
    made = await storage.analytics.load_curve_csv(*window)
    written = csv_text(rows)

    assert made.endswith("\r\n") and made.count("\r\n") == len(rows) + 1
    made_cells, written_cells = (list(csv.reader(io.StringIO(text))) for text in (made, written))
    assert made_cells[0] == written_cells[0] == list(rows[0])  # the header: the rows' keys, in order
    assert len(made_cells) == len(written_cells)
    for got, want in zip(made_cells[1:], written_cells[1:], strict=True):
        assert got[0] == want[0]  # the start, as text
        # the same numbers (PostgreSQL may print 0 where Python prints 0.0), the same empty cells
        assert [c and float(c) for c in got[1:]] == [c and pytest.approx(float(c), rel=1e-12) for c in want[1:]]
    assert any(cell == "" for line in made_cells[1:] for cell in line)  # planned-only rows: empty cells


async def test_no_rows_is_an_empty_array_and_an_empty_csv(storage: SqlStorage) -> None:
    window = ("nowhere", T0, T0 + timedelta(days=1), 900)
    assert await storage.analytics.load_curve_json(*window) == "[]"
    assert await storage.analytics.load_curve_csv(*window) == ""


async def test_at_the_rollup_step_the_rows_read_as_they_are_equal_the_grouped_form(storage: SqlStorage) -> None:
    window = await _a_measured_and_planned_site(storage, 300)
    params = _curve_params(*window)
    for plain, grouped in zip(_curve_sql(300), _curve_sql(300, grouped=True), strict=True):
        assert plain != grouped
        got = await storage.db.fetchall(f"{plain} ORDER BY t", params)
        want = await storage.db.fetchall(f"{grouped} ORDER BY t", params)
        assert len(got) > 30 and [dict(r) for r in got] == [dict(r) for r in want]
