"""The built-in test payment provider: a top-up "paid" on a page of ems itself, labelled "Test payment".

It implements ``ems.ports.billing.PaymentProvider`` as a real provider would: ``create_checkout``
answers where to send the driver; the payment is then confirmed separately (here by the
driver pressing "Pay" on the test page, which credits through ``Wallet.credit_payment`` once
per reference, exactly as the signed webhook does for a real provider). Only for demos and
tests: it is on when ``EMS_WEB_TEST_PAYMENTS`` is set (``ems demo`` sets it).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

from ems.domain.billing import PaymentCheckout
from ems.domain.money import Money

TEST_PROVIDER = "test"
_MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class PendingTestPayment:
    reference: str
    account_id: str
    amount: Money
    return_url: str


class TestPaymentProvider:
    """Checkouts held in memory (a restart forgets unpaid ones, as a provider's session would expire)."""

    __test__ = False  # not a pytest test class
    name = TEST_PROVIDER

    def __init__(self, base_path: str = "/pay/test") -> None:
        self.base_path = base_path
        self._pending: OrderedDict[str, PendingTestPayment] = OrderedDict()

    async def create_checkout(self, account_id: str, amount: Money, *, return_url: str) -> PaymentCheckout:
        reference = secrets.token_urlsafe(12)
        self._pending[reference] = PendingTestPayment(reference, account_id, amount, return_url)
        while len(self._pending) > _MAX_PENDING:
            self._pending.popitem(last=False)
        return PaymentCheckout(self.name, reference, f"{self.base_path}/{reference}")

    def pending(self, reference: str) -> PendingTestPayment | None:
        return self._pending.get(reference)

    def done(self, reference: str) -> None:
        self._pending.pop(reference, None)
