"""Sessions with their cost, receipts (JSON and printable HTML), refunds."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from ems.api.auth import AnyUser, Operator, Services
from ems.api.billing_support import MONEY_PATTERN, BillingDep, check_owner, money, parse_money
from ems.billing.codec import cdr_to_json
from ems.domain.billing import SessionCost
from ems.domain.ledger import Book
from ems.domain.session import ChargingSession
from ems.errors import NotFound

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])

SessionId = Annotated[str, Path(min_length=1, max_length=64)]


class CostPublic(BaseModel):
    session_id: str
    station_id: str
    final: bool
    """``False`` for a running session: the accrued cost so far."""
    currency: str
    total: str
    net: str
    vat: str
    energy_wh: str
    line_items: list[dict[str, Any]]
    tariff_id: str
    started_at: datetime
    stopped_at: datetime
    account_id: str | None
    card_uid: str | None
    charged: str
    """What the prepaid account paid (0 for personal cards)."""
    uncollected: str

    @classmethod
    def of(cls, cost: SessionCost, *, final: bool = True) -> CostPublic:
        cdr = cdr_to_json(cost.cdr)
        return cls(
            session_id=cost.session_id,
            station_id=cost.station_id,
            final=final,
            currency=cost.cdr.currency,
            total=cdr["total"],
            net=cdr["net"],
            vat=cdr["vat"],
            energy_wh=cdr["energy_wh"],
            line_items=cdr["line_items"],
            tariff_id=cost.cdr.tariff_id,
            started_at=cost.cdr.started_at,
            stopped_at=cost.cdr.stopped_at,
            account_id=cost.account_id,
            card_uid=cost.card_uid,
            charged=money(cost.captured_minor, cost.cdr.currency),
            uncollected=money(cost.uncollected_minor, cost.cdr.currency),
        )


class SessionPublic(BaseModel):
    id: str
    station_id: str
    evse_id: int
    connector_id: int
    transaction_id: str
    status: str
    id_tag: str | None
    started_at: datetime
    stopped_at: datetime | None
    stop_reason: str | None
    energy_wh: float
    cost: CostPublic | None


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str = Field(pattern=MONEY_PATTERN, examples=["1.50"])
    currency: str = Field(min_length=3, max_length=3)
    reason: str | None = Field(default=None, max_length=200)


async def _session(services: Services, session_id: str) -> ChargingSession:
    session = await services.storage.sessions.get(session_id)
    if session is None:
        raise NotFound(f"no session {session_id!r}")
    return session


async def _owner(billing: BillingDep, services: Services, session: ChargingSession) -> str | None:
    cost = await billing.service.billing.costs.get(session.id)
    hold = await billing.service.billing.ledger.hold_for_session(session.id)
    account_id = cost.account_id if cost and cost.account_id else hold.account_id if hold else None
    if account_id is not None:
        account = await billing.service.billing.ledger.account(account_id)
        return account.user_id if account else None
    card = await services.storage.cards.get(session.id_tag) if session.id_tag else None
    return card.user_id if card else None


@router.get("/{session_id}", summary="A session with its energy, status and cost (total and line items)")
async def get_session(
    session_id: SessionId, services: Services, billing: BillingDep, principal: AnyUser
) -> SessionPublic:
    session = await _session(services, session_id)
    check_owner(principal, await _owner(billing, services, session))
    cost = await billing.service.quote(session_id)
    recorded = await billing.service.billing.costs.get(session_id)
    return SessionPublic(
        id=session.id,
        station_id=session.station_id,
        evse_id=session.evse_id,
        connector_id=session.connector_id,
        transaction_id=session.transaction_id,
        status=session.status.value,
        id_tag=session.id_tag,
        started_at=session.started_at,
        stopped_at=session.stopped_at,
        stop_reason=session.stop_reason,
        energy_wh=session.energy_wh,
        cost=CostPublic.of(cost, final=recorded is not None),
    )


async def _receipt(billing: BillingDep, services: Services, principal: AnyUser, session_id: str) -> SessionCost:
    session = await _session(services, session_id)
    check_owner(principal, await _owner(billing, services, session))
    cost = await billing.service.billing.costs.get(session_id)
    if cost is None:
        raise NotFound(f"session {session_id!r} has no receipt yet: it has not ended")
    return cost


@router.get("/{session_id}/receipt", summary="The receipt of an ended session (JSON)")
async def receipt(session_id: SessionId, services: Services, billing: BillingDep, principal: AnyUser) -> CostPublic:
    return CostPublic.of(await _receipt(billing, services, principal, session_id))


@router.get("/{session_id}/receipt.html", response_class=HTMLResponse, summary="The receipt, printable")
async def receipt_html(
    session_id: SessionId, services: Services, billing: BillingDep, principal: AnyUser
) -> HTMLResponse:
    return HTMLResponse(render_receipt(await _receipt(billing, services, principal, session_id)))


@router.post("/{session_id}/refunds", status_code=status.HTTP_201_CREATED, summary="Refund part of a prepaid session")
async def refund(
    session_id: SessionId,
    body: RefundCreate,
    billing: BillingDep,
    response: Response,
    _: Operator,
    idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=200)],
) -> dict[str, Any]:
    amount = parse_money(body.amount, body.currency)
    applied = await billing.wallet.refund_session(
        session_id, amount, idempotency_key=idempotency_key, reason=body.reason
    )
    if applied.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    currency = applied.movement.currency
    return {
        "movement_id": applied.movement.id,
        "session_id": session_id,
        "account_id": applied.movement.account_id,
        "amount": money(applied.movement.on(Book.WALLET), currency),
        "currency": currency,
        "balance": money(applied.balance_after.available_minor, currency),
        "at": applied.movement.at.isoformat(),
    }


def render_receipt(cost: SessionCost) -> str:
    """A self-contained printable HTML receipt (escaped; no scripts, no external assets)."""
    cdr = cdr_to_json(cost.cdr)
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(li['description'])}</td><td class=n>{e(li['quantity'])} {e(li['unit'])}</td>"
        f"<td class=n>{e(li['unit_price'] or '')}</td><td class=n>{e(li['amount'])}</td></tr>"
        for li in cdr["line_items"]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Receipt {e(cost.session_id)}</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}table{{width:100%;border-collapse:collapse}}
td,th{{padding:.3em;border-bottom:1px solid #ccc;text-align:left}}.n{{text-align:right}}
@media print{{body{{margin:0}}}}</style></head><body>
<h1>Charging receipt</h1>
<p>Session <b>{e(cost.session_id)}</b> at station <b>{e(cost.station_id)}</b><br>
{e(cdr["started_at"])} &ndash; {e(cdr["stopped_at"])}<br>Energy: {e(cdr["energy_wh"])} Wh
{f"<br>Card: {e(cost.card_uid)}" if cost.card_uid else ""}</p>
<table><thead><tr><th>Item</th><th class=n>Quantity</th><th class=n>Unit price</th>
<th class=n>Amount ({e(cdr["currency"])})</th></tr></thead><tbody>{rows}</tbody>
<tfoot><tr><th colspan=3>Net</th><th class=n>{e(cdr["net"])}</th></tr>
<tr><th colspan=3>VAT</th><th class=n>{e(cdr["vat"])}</th></tr>
<tr><th colspan=3>Total</th><th class=n id=total>{e(cdr["total"])}</th></tr></tfoot></table>
<p>Paid from prepaid balance: {e(money(cost.captured_minor, cost.cdr.currency))} {e(cdr["currency"])}</p>
</body></html>
"""
