"""The batched audit write of capacity signals, on both storage back ends."""

from __future__ import annotations

from ems.domain.capacity import MAX_AUDIT_PAYLOAD_CHARS, OPEN_END, CapacityBlock, SignalAudit, SignalKind
from ems.ports.stores import Storage
from tests.unit.grid.helpers import at, block, signal


async def test_add_many_keeps_every_record(storage: Storage) -> None:
    limit = signal(CapacityBlock(at(0), OPEN_END, 5_000), kind=SignalKind.LIMIT, message_id="l1")
    records = [
        SignalAudit(signal(block(0, 60, 40_000), message_id="f1"), True),
        SignalAudit(signal(message_id="bad"), False, "end_time is not after start_time", '{"bad": true}'),
        SignalAudit(limit, True),
    ]
    await storage.signals.add_many(records)
    await storage.signals.add_many([])
    stored = await storage.signals.audit("depot")
    assert {(a.signal.message_id, a.accepted, a.error, a.payload) for a in stored} == {
        (a.signal.message_id, a.accepted, a.error, a.payload) for a in records
    }
    by_id = {a.signal.message_id: a.signal for a in stored}
    assert by_id["f1"].blocks == records[0].signal.blocks
    assert by_id["l1"].blocks[0].end == OPEN_END
    assert len(await storage.signals.for_site("depot", limit=2)) == 2


async def test_payload_is_kept_and_cut(storage: Storage) -> None:
    await storage.signals.add(signal(message_id="x"), accepted=False, error="malformed", payload="{" * 10_000)
    (record,) = await storage.signals.audit("depot")
    assert record.payload == "{" * MAX_AUDIT_PAYLOAD_CHARS
