from datetime import UTC, datetime

from ems.clock import FakeClock
from ems.domain.card import Card, CardMode
from ems.domain.site import Site
from ems.services.billing import BillingPolicy
from ems.services.billing_setup import build_billing
from ems.sim.demo_billing import DEMO_TARIFF_ID, billing_summary, seed_demo_billing
from ems.storage.factory import SqlStorage


async def test_demo_seed_is_idempotent_and_makes_prepaid_cards(storage: SqlStorage) -> None:
    billing = build_billing(storage, clock=FakeClock(datetime(2026, 1, 5, tzinfo=UTC)), policy=BillingPolicy())
    await storage.cards.add(Card("SIM-CARD-1", label="demo driver"))
    for _ in range(2):
        await seed_demo_billing(billing, storage, (Site("depot"),), ("SIM-CARD-1", "SIM-CARD-2"))
    cards = [await storage.cards.get(uid) for uid in ("SIM-CARD-1", "SIM-CARD-2")]
    assert all(c is not None and c.mode is CardMode.COMMERCIAL and c.account_id for c in cards)
    assert [a.tariff_id for a in await storage.billing.tariffs.assignments()] == [DEMO_TARIFF_ID]
    assert len(await storage.billing.users.all()) == 2
    assert await billing_summary(storage, ("SIM-CARD-1",)) == [
        "billing: no session has ended yet",
        "balances: SIM-CARD-1 200.00 EUR (held 0.00 EUR)",
    ]
