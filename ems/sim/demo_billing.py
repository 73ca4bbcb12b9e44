"""Billing for ``ems demo``: a demo tariff on every site, prepaid accounts behind the simulated
drivers' cards, and a summary of what was priced and how balances moved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import time
from decimal import Decimal

from ems.domain.billing import AssignmentScope, TariffAssignment
from ems.domain.card import Card, CardMode
from ems.domain.money import Money
from ems.domain.site import Site
from ems.domain.tariff import Tariff, TouBand
from ems.errors import Conflict
from ems.ports.stores import Storage
from ems.services.billing_setup import Billing
from ems.services.drivers import DriverAuth

DEMO_TARIFF_ID = "demo"
DEMO_TOP_UP = "200.00"
"""Room for four concurrent sessions per demo card at the default 50.00 hold (at the default two
stations of each OCPP version; ``ems demo --stations N`` scales it with the stations)."""
DEMO_DRIVER_PHONE = "+1 555 0100"
DEMO_DRIVER_PIN = "1234"
"""The demo's web driver (the QR page): signs in with these and tops up with the test provider."""


def demo_tariff(currency: str) -> Tariff:
    return Tariff(
        DEMO_TARIFF_ID,
        "Demo: 0.30/kWh, 0.45 at peak, 1.00 per session, idle 0.10/min after 15 min, 21% VAT",
        currency,
        energy_per_kwh=Decimal("0.30"),
        session_fee=Decimal("1.00"),
        idle_per_minute=Decimal("0.10"),
        idle_grace_minutes=15,
        tou=(TouBand("peak", time(17), time(21), energy_per_kwh=Decimal("0.45")),),
        vat_percent=Decimal("21"),
    )


async def seed_demo_billing(
    billing: Billing, storage: Storage, sites: Sequence[Site], card_uids: Sequence[str], *, scale: int = 1
) -> None:
    """Idempotent: a second demo on the same database reuses the tariff, accounts and cards.

    ``scale``: each card's account is topped up ``scale`` times ``DEMO_TOP_UP`` (as many times more
    stations share the cards)."""
    currency = billing.service.policy.default_currency
    if await storage.billing.tariffs.get(DEMO_TARIFF_ID) is None:
        await storage.billing.tariffs.add(demo_tariff(currency))
    assigned = {(a.scope, a.scope_id) for a in await storage.billing.tariffs.assignments()}
    for site in sites:
        if (AssignmentScope.SITE, site.id) not in assigned:
            await storage.billing.tariffs.assign(TariffAssignment(AssignmentScope.SITE, site.id, DEMO_TARIFF_ID))
    for uid in card_uids:
        card = await storage.cards.get(uid)
        if card is not None and card.account_id is not None:
            continue
        user, account = await billing.wallet.create_user(f"Demo driver {uid}", currency=currency)
        await billing.wallet.top_up(
            account.id, Money.of(Decimal(DEMO_TOP_UP) * scale, currency), idempotency_key=f"demo-{uid}"
        )
        prepaid = Card(uid, mode=CardMode.COMMERCIAL, account_id=account.id, user_id=user.id, label="demo driver")
        if card is None:
            try:
                await storage.cards.add(prepaid)
            except Conflict:
                await storage.cards.update(prepaid)
        else:
            await storage.cards.update(replace(card, mode=CardMode.COMMERCIAL, account_id=account.id, user_id=user.id))


async def seed_demo_driver(billing: Billing, drivers: DriverAuth) -> str:
    """A driver for the web pages, with an empty prepaid account: they top up with the test provider."""
    currency = billing.service.policy.default_currency
    user, _ = await billing.wallet.create_user("Demo web driver", currency=currency, phone=DEMO_DRIVER_PHONE)
    await drivers.set_pin(user.id, DEMO_DRIVER_PIN)
    return user.id


async def billing_summary(storage: Storage, card_uids: Sequence[str]) -> list[str]:
    """One line on what the demo priced, and each demo card's balance."""
    costs = await storage.billing.costs.query(limit=100_000)
    lines = ["billing: no session has ended yet"]
    if costs:
        currency = costs[0].cdr.currency
        priced = sum((c.cdr.total for c in costs if c.cdr.currency == currency), Money.zero(currency))
        paid = Money.from_minor(sum(c.captured_minor for c in costs if c.cdr.currency == currency), currency)
        lines = [f"billing: {len(costs)} sessions priced, {priced} in total, {paid} paid from prepaid balances"]
    balances = []
    for uid in card_uids:
        card = await storage.cards.get(uid)
        if card is not None and card.account_id is not None:
            balance = await storage.billing.ledger.balance(card.account_id)
            held = Money.from_minor(balance.held_minor, balance.currency)
            balances.append(f"{uid} {Money.from_minor(balance.available_minor, balance.currency)} (held {held})")
    return [*lines, "balances: " + (", ".join(balances) if balances else "none")]
