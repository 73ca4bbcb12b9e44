"""The billing application service: authorizes cards, holds at start, prices and captures at stop,
watches accrued cost, and runs pay-before-start. Depends only on ports, the clock and pure billing.

Session lifecycle for a commercial (prepaid) card::

    Authorize        -> authorize(): card status/expiry, then available balance >= policy.min_hold
    SessionStarted   -> session_started(): hold min(available, policy.max_hold) (WALLET -> HELD)
    MeterSampled     -> watch_accrued(): price so far; at accrued >= hold, RemoteStop (once)
    SessionEnded     -> session_ended(): price the CDR, capture the cost, release the rest, record
                        the cost, all in one ledger transaction; a duplicate stop changes nothing

Personal cards are authorized on card status alone; their sessions are priced for the record
(``SessionCost.account_id is None``) and nothing is billed.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from ems.billing.ledger import HoldNotOpen, capture, charge, place_hold, release
from ems.billing.pricing import price_session, resolve_tariff_id, usage_from_session
from ems.clock import Clock
from ems.domain.billing import Account, Applied, IdempotencyClaim, SessionCost
from ems.domain.card import AuthorizationDecision, AuthorizationStatus, Card, CardMode, authorize_card
from ems.domain.commands import RemoteStop
from ems.domain.ledger import AccountState, Decision
from ems.domain.ledger import Hold as LedgerHold
from ems.domain.money import Money
from ems.domain.session import ChargingSession
from ems.domain.tariff import Tariff
from ems.errors import BillingError, Conflict, EmsError, InsufficientFunds, NotFound
from ems.ports.billing import BillingStores
from ems.ports.control import ChargerControl
from ems.ports.stores import CardStore, MeterSampleStore, SessionStore, StationStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BillingPolicy:
    """Operator settings for prepaid charging (amounts in the account's currency)."""

    min_hold: Decimal = Decimal("5.00")
    """A commercial card may start only with at least this much available: covers a session fee
    plus a few kWh, so a near-empty wallet is told why instead of stopping a minute in."""
    max_hold: Decimal = Decimal("50.00")
    """A session holds the whole available balance up to this, and is stopped when its cost reaches the hold."""
    pending_start_s: float = 180.0
    """An app start whose session has not begun after this is released (OCPP ConnectionTimeOut is 30-120 s)."""
    default_timezone: str = "UTC"
    timezones: Mapping[str, str] = field(default_factory=dict)
    """Site id -> IANA zone, for time-of-use bands."""
    station_sites: Mapping[str, str] = field(default_factory=dict)
    """Station id -> site id from the site file, for stations whose record names no site (auto-registered)."""
    default_site: str | None = None
    """The site of a station placed nowhere: the only site, when there is exactly one."""

    def site_of(self, station_id: str, recorded: str | None) -> str | None:
        """The station's site: its record's, else the site file's placement, else the only site."""
        return recorded or self.station_sites.get(station_id) or self.default_site

    def timezone_of(self, site_id: str | None) -> str:
        return self.timezones.get(site_id or "", self.default_timezone)

    default_currency: str = "EUR"
    watch_interval_s: float = 30.0
    """Accrued-cost checks per session at most this often: the stop comes at most ~30 s of charging late
    (about 0.03 EUR at 11 kW and 0.30 EUR/kWh), in exchange for not re-reading a session's samples every 10 s."""


def new_id() -> str:
    return uuid.uuid4().hex


class BillingService:
    def __init__(
        self,
        *,
        billing: BillingStores,
        cards: CardStore,
        sessions: SessionStore,
        samples: MeterSampleStore,
        stations: StationStore,
        control: ChargerControl,
        clock: Clock,
        policy: BillingPolicy | None = None,
        ids: Callable[[], str] = new_id,
    ) -> None:
        self.billing = billing
        self.cards = cards
        self.sessions = sessions
        self.samples = samples
        self.stations = stations
        self.control = control
        self.clock = clock
        self.policy = policy or BillingPolicy()
        self.ids = ids
        self._stop_sent: set[str] = set()
        self._watched_at: dict[str, float] = {}
        self._unsettleable: set[str] = set()
        """Ended sessions whose settlement failed with a bug (not a billing or storage error)."""

    # ------------------------------------------------------------ authorize (the Authorizer port)

    async def authorize(self, id_tag: str, *, station_id: str, evse_id: int | None = None) -> AuthorizationDecision:
        # A token with an open hold at this station is paid for: an app start (before or after its
        # session began; 2.0.1 stations re-send the token on every TransactionEvent) or a running session.
        held = [h for h in await self.billing.ledger.open_holds(id_tag=id_tag) if h.station_id in (None, station_id)]
        if held:
            return AuthorizationDecision(AuthorizationStatus.ACCEPTED, account_id=held[0].account_id)
        card = await self.cards.get(id_tag)
        status = authorize_card(card, self.clock.now())
        if card is None or status is not AuthorizationStatus.ACCEPTED:
            return AuthorizationDecision(
                status, reason=_card_reason(status), expires_at=card.expires_at if card else None
            )
        if card.mode is CardMode.PERSONAL:
            return AuthorizationDecision(AuthorizationStatus.ACCEPTED, expires_at=card.expires_at)
        account = await self._card_account(card)
        if account is None:
            return AuthorizationDecision(AuthorizationStatus.INVALID, reason="this prepaid card has no account")
        available = Money.from_minor((await self.billing.ledger.balance(account.id)).available_minor, account.currency)
        minimum = Money(self.policy.min_hold, account.currency).rounded()
        if available < minimum:
            return AuthorizationDecision(
                AuthorizationStatus.NO_CREDIT,
                reason=f"balance {available} is below the {minimum} needed to start; please top up",
                account_id=account.id,
            )
        return AuthorizationDecision(AuthorizationStatus.ACCEPTED, expires_at=card.expires_at, account_id=account.id)

    # ------------------------------------------------------------ session events

    async def session_started(self, session_id: str, *, station_id: str, id_tag: str | None) -> LedgerHold | None:
        """Hold money for a prepaid session (or link the app start's hold). Idempotent per session.

        A prepaid card whose balance no longer covers the minimum is stopped remotely.
        """
        existing = await self.billing.ledger.hold_for_session(session_id)
        if existing is not None or id_tag is None:
            return existing
        pending = await self._pending_hold(id_tag, station_id)
        if pending is not None:
            return await self.billing.ledger.link_hold(pending.id, session_id)
        card = await self.cards.get(id_tag)
        if card is None or card.mode is not CardMode.COMMERCIAL:
            return None
        account = await self._card_account(card)
        if account is None:
            return None
        hold = LedgerHold(
            id=self.ids(),
            account_id=account.id,
            currency=account.currency,
            amount_minor=0,
            created_at=self.clock.now(),
            id_tag=id_tag,
            station_id=station_id,
            session_id=session_id,
        )
        try:
            return (await self.hold_available(account, hold)).holds[0]
        except InsufficientFunds as exc:
            log.warning("session %s: %s; stopping it", session_id, exc)
            await self._remote_stop(session_id)
            return None

    async def watch_accrued(self, session_id: str) -> bool:
        """Price a running session so far; when its cost reaches its hold, stop it remotely (once).

        Returns whether a stop was sent. Stopping (rather than lowering the limit) bounds every
        tariff component, including time and idle fees, which a lower current would not.
        """
        if session_id in self._stop_sent:
            return False
        hold = await self.billing.ledger.hold_for_session(session_id)
        if hold is None:
            return False
        # Pricing so far reads every sample of the session: at most once per watch_interval_s per session,
        # so a long session costs O(duration / interval) reads, not one per meter value.
        now_s = self.clock.monotonic()
        last = self._watched_at.get(session_id)
        if last is not None and now_s - last < self.policy.watch_interval_s:
            return False
        self._watched_at[session_id] = now_s
        session = await self.sessions.get(session_id)
        if session is None or session.stopped_at is not None:
            return False
        cost = await self._price(session, stopped_at=self.clock.now())
        if cost.cdr.total.to_minor() < hold.amount_minor:
            return False
        log.info("session %s: accrued %s reached its hold; stopping it", session_id, cost.cdr.total)
        await self._remote_stop(session_id)
        return True

    async def session_ended(self, session_id: str) -> SessionCost:
        """Price the session and settle its hold. A second call returns the first result and moves nothing."""
        self._watched_at.pop(session_id, None)
        session = await self._cost_or_session(session_id)
        if isinstance(session, SessionCost):
            return session
        cost = await self._price(session)
        hold = await self.billing.ledger.hold_for_session(session_id)
        if hold is None:
            return await self._charge_without_hold(session, cost)
        cost_minor = cost.cdr.total.to_minor()
        movement_id = self.ids()
        try:
            applied = await self.billing.ledger.apply(
                hold.account_id,
                lambda state: capture(
                    state, movement_id=movement_id, hold_id=hold.id, cost_minor=cost_minor, at=self.clock.now()
                ),
                cost=cost,
            )
        except HoldNotOpen:
            return await self._cost(session_id)  # a concurrent stop settled it first
        self._stop_sent.discard(session_id)
        settled = applied.holds[0] if applied.holds else hold
        log.info("session %s: captured %s of a %s hold", session_id, cost.cdr.total, settled.amount_minor)
        return await self._cost(session_id)

    async def _charge_without_hold(self, session: ChargingSession, cost: SessionCost) -> SessionCost:
        """A personal card's session is recorded, not billed. A prepaid card's session that ran without
        a hold (refused at start, stopped remotely, but it drew some energy first) is still charged."""
        card = await self.cards.get(session.id_tag) if session.id_tag else None
        account = await self._card_account(card) if card and card.mode is CardMode.COMMERCIAL else None
        cost_minor = cost.cdr.total.to_minor()
        if account is None or cost_minor == 0 or account.currency != cost.cdr.currency:
            await self.billing.costs.add(cost)
            return await self._cost(session.id)
        movement_id = self.ids()
        # Conflict: a concurrent stop recorded this session's cost first, and this transaction wrote nothing.
        with contextlib.suppress(Conflict):
            await self.billing.ledger.apply(
                account.id,
                lambda state: charge(
                    state, movement_id=movement_id, session_id=session.id, cost_minor=cost_minor, at=self.clock.now()
                ),
                cost=cost,
            )
        return await self._cost(session.id)

    async def settle_ended(self) -> list[str]:
        """Settle every open hold whose session has ended (its SessionEnded was missed); returns their ids."""
        settled = []
        for hold in await self.billing.ledger.open_holds():
            if hold.session_id is None or hold.session_id in self._unsettleable:
                continue
            session = await self.sessions.get(hold.session_id)
            if session is not None and session.stopped_at is not None:
                try:
                    await self.session_ended(session.id)
                except EmsError:
                    raise  # storage or billing refused: the next sweep tries again
                except Exception:
                    # A session pricing cannot handle must not block every other settlement, nor be
                    # retried every sweep: logged once with its traceback, skipped until a restart.
                    log.exception("session %s cannot be settled; skipped by the sweep", session.id)
                    self._unsettleable.add(session.id)
                    continue
                settled.append(session.id)
        return settled

    async def quote(self, session_id: str) -> SessionCost:
        """The recorded cost of an ended session, or the accrued cost of a running one (priced up to now)."""
        session = await self._cost_or_session(session_id)
        if isinstance(session, SessionCost):
            return session
        return await self._price(session, stopped_at=None if session.stopped_at else self.clock.now())

    async def _cost_or_session(self, session_id: str) -> SessionCost | ChargingSession:
        """The session's recorded cost if it has one, else the session; ``NotFound`` if neither."""
        recorded = await self.billing.costs.get(session_id)
        if recorded is not None:
            return recorded
        session = await self.sessions.get(session_id)
        if session is None:
            raise NotFound(f"session {session_id} does not exist")
        return session

    # ------------------------------------------------------------ helpers

    async def hold_available(
        self, account: Account, hold: LedgerHold, *, idempotency: IdempotencyClaim | None = None
    ) -> Applied:
        """Hold min(available, max_hold), refused below min_hold; in one locked ledger transaction."""
        minimum = Money(self.policy.min_hold, account.currency).rounded().to_minor()
        maximum = Money(self.policy.max_hold, account.currency).rounded().to_minor()
        movement_id = self.ids()

        def decide(state: AccountState) -> Decision:
            amount = min(state.balance.available_minor, maximum)
            if amount < max(minimum, 1):
                available = Money.from_minor(state.balance.available_minor, account.currency)
                need = Money.from_minor(minimum, account.currency)
                raise InsufficientFunds(f"balance {available} is below the {need} needed to start")
            sized = replace(hold, amount_minor=amount)
            return place_hold(state, movement_id=movement_id, hold=sized, at=self.clock.now())

        return await self.billing.ledger.apply(account.id, decide, idempotency=idempotency)

    async def release_hold(self, hold_id: str, memo: str) -> bool:
        """Release an open hold; ``False`` if it was settled already."""
        hold = await self.billing.ledger.hold(hold_id)
        if hold is None:
            raise NotFound(f"hold {hold_id} does not exist")
        movement_id = self.ids()
        try:
            await self.billing.ledger.apply(
                hold.account_id,
                lambda state: release(state, movement_id=movement_id, hold_id=hold_id, at=self.clock.now(), memo=memo),
            )
        except HoldNotOpen:
            return False
        return True

    async def _pending_hold(self, id_tag: str, station_id: str) -> LedgerHold | None:
        holds = await self.billing.ledger.open_holds(id_tag=id_tag, unlinked_only=True)
        return next((h for h in holds if h.station_id in (None, station_id)), None)

    async def _card_account(self, card: Card) -> Account | None:
        return None if card.account_id is None else await self.billing.ledger.account(card.account_id)

    async def _remote_stop(self, session_id: str) -> None:
        session = await self.sessions.get(session_id)
        if session is None or session_id in self._stop_sent:
            return
        self._stop_sent.add(session_id)
        result = await self.control.execute(session.station_id, RemoteStop(transaction_id=session.transaction_id))
        if not result.ok:
            log.warning("session %s: remote stop %s (%s)", session_id, result.status, result.detail)

    async def tariff_for(self, station_id: str, group: str | None) -> Tariff:
        """The tariff in force at a station for a user group; a free tariff when none is assigned."""
        site_id = await self._site(station_id)
        assignments = await self.billing.tariffs.assignments()
        tariff_id = resolve_tariff_id(assignments, site_id=site_id, station_id=station_id, group=group)
        tariff = await self.billing.tariffs.get(tariff_id) if tariff_id else None
        return tariff or Tariff(id="free", name="No tariff assigned", currency=self.policy.default_currency)

    async def timezone_for(self, station_id: str) -> str:
        return self.policy.timezone_of(await self._site(station_id))

    async def _site(self, station_id: str) -> str | None:
        station = await self.stations.get(station_id)
        return self.policy.site_of(station_id, station.site_id if station else None)

    async def _price(self, session: ChargingSession, *, stopped_at: datetime | None = None) -> SessionCost:
        card = await self.cards.get(session.id_tag) if session.id_tag else None
        hold = await self.billing.ledger.hold_for_session(session.id)
        group = None
        if card is not None and card.user_id is not None:
            user = await self.billing.users.get(card.user_id)
            group = user.group if user else None
        tariff = await self.tariff_for(session.station_id, group)
        if hold is not None and tariff.currency != hold.currency:
            raise BillingError(f"tariff {tariff.id} is in {tariff.currency} but the paying account in {hold.currency}")
        samples = await self.samples.for_session(session.id)
        usage = usage_from_session(session, samples, stopped_at=stopped_at)
        cdr = price_session(tariff, usage, await self.timezone_for(session.station_id))
        return SessionCost(
            session_id=session.id,
            station_id=session.station_id,
            cdr=cdr,
            priced_at=self.clock.now(),
            account_id=hold.account_id if hold else None,
            card_uid=session.id_tag,
            hold_id=hold.id if hold else None,
        )

    async def _cost(self, session_id: str) -> SessionCost:
        cost = await self.billing.costs.get(session_id)
        if cost is None:
            raise NotFound(f"session {session_id} has no cost recorded")
        return cost


def _card_reason(status: AuthorizationStatus) -> str:
    return {
        AuthorizationStatus.INVALID: "unknown card",
        AuthorizationStatus.BLOCKED: "this card is blocked",
        AuthorizationStatus.EXPIRED: "this card has expired",
    }.get(status, status.value)
