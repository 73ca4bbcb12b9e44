"""The batched audit write of capacity signals, on both storage back ends."""

from __future__ import annotations

from ems.domain.capacity import OPEN_END, CapacityBlock, SignalKind
from ems.ports import Storage
from tests.unit.grid.helpers import at, block, signal


async def test_add_many_keeps_every_record(storage: Storage) -> None:
    limit = signal(CapacityBlock(at(0), OPEN_END, 5_000), kind=SignalKind.LIMIT, message_id="l1")
    records = [
        (signal(block(0, 60, 40_000), message_id="f1"), True, None),
        (signal(site_id="depot", message_id="bad"), False, "end_time is not after start_time"),
        (limit, True, None),
    ]
    await storage.signals.add_many(records)
    await storage.signals.add_many([])
    stored = await storage.signals.for_site("depot")
    assert {(s.message_id, ok, err) for s, ok, err in stored} == {(s.message_id, ok, err) for s, ok, err in records}
    by_id = {s.message_id: s for s, _, _ in stored}
    assert by_id["f1"].blocks == records[0][0].blocks
    assert by_id["l1"].blocks[0].end == OPEN_END
