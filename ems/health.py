"""Readiness of a running ems process, per component, for ``/health``. Never a secret in it.

``SystemHealth.checks()`` reads what the components already keep (no I/O; the API adds the
database check, which needs a round trip):

===============  ===================================================================  ==========================
check            ready when                                                           detail
===============  ===================================================================  ==========================
``component:X``  the supervised component X runs (not failed or waiting to restart)   state, failures, restarts,
                                                                                      last error type, retry in
``ocpp``         the journal applier runs and fewer than ``MAX_JOURNAL_LAG`` answered  journal lag, applier alive,
                 messages wait for storage, and storage is not being retried          storage retrying, stations
``controller``   every site with active sessions has a plan younger than              per site: last plan at, age,
                 ``MAX_PLAN_AGE_INTERVALS`` re-plan intervals, or has had none for     status, unplanned for;
                 less than that long (re-plans failing since, or first seen so)       re-plan failures
``mqtt``         the broker session is up (only when ``EMS_MQTT_URL`` is set)          connected, connections
===============  ===================================================================  ==========================

Details are numbers, states and exception *type* names only: error messages can name hosts
and URLs, they stay in the log. The parts are read through the small protocols below, so this
module imports no adapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ems.clock import Clock
from ems.supervisor import ComponentHealth, ComponentState

MAX_JOURNAL_LAG = 10_000
"""Answered OCPP messages not yet in storage before ems says it is not ready: ~30 s of a
300-station site's meter values. Below it, a lag is normal batching."""
MAX_PLAN_AGE_INTERVALS = 3.0
"""A site with sessions whose plan is older than 3 re-plan intervals is not being controlled."""

Detail = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ready: bool
    detail: Detail = field(default_factory=dict)


class HealthChecks(Protocol):
    def checks(self) -> list[Check]: ...


class ComponentsView(Protocol):
    def health(self) -> list[ComponentHealth]: ...


class JournalView(Protocol):
    def backlog(self) -> int: ...


class ApplierView(Protocol):
    @property
    def retrying(self) -> object: ...  # asyncio.Event

    def in_flight(self) -> int: ...


class OcppView(Protocol):
    """``ems.ocpp.runtime.OcppRuntime``: its parts exist once ``prepared``."""

    @property
    def prepared(self) -> bool: ...

    @property
    def journal(self) -> JournalView: ...

    @property
    def applier(self) -> ApplierView: ...

    @property
    def registry(self) -> Sized: ...


class PlanView(Protocol):
    @property
    def planned_at(self) -> datetime: ...


class ControllerView(Protocol):
    @property
    def plans(self) -> Mapping[str, PlanView]: ...

    @property
    def replan_failures(self) -> int: ...

    @property
    def unplanned_since(self) -> Mapping[str, datetime]: ...

    @property
    def settings(self) -> object: ...


class MqttView(Protocol):
    @property
    def connected(self) -> object: ...  # asyncio.Event

    @property
    def connections(self) -> int: ...


def component_checks(components: Sequence[ComponentHealth]) -> list[Check]:
    out = []
    for c in components:
        detail: dict[str, object] = {
            "state": c.state.value,
            "restartable": c.restartable,
            "failures": c.failures,
            "restarts": c.restarts,
        }
        if c.last_error is not None:
            detail["last_error"] = c.last_error
        if c.last_failure_at is not None:
            detail["last_failure_at"] = c.last_failure_at.isoformat()
        if c.retry_in_s is not None:
            detail["retry_in_s"] = c.retry_in_s
        out.append(Check(f"component:{c.name}", c.state is ComponentState.RUNNING, detail))
    return out


class SystemHealth:
    def __init__(
        self,
        clock: Clock,
        *,
        supervisor: ComponentsView,
        ocpp: OcppView | None = None,
        controller: ControllerView | None = None,
        mqtt: MqttView | None = None,
    ) -> None:
        self._clock = clock
        self._supervisor = supervisor
        self._ocpp = ocpp
        self._controller = controller
        self._mqtt = mqtt
        self._unplanned_seen: dict[str, datetime] = {}
        """Sites first seen here with sessions, no plan and no failed re-plan on record."""

    def checks(self) -> list[Check]:
        out = component_checks(self._supervisor.health())
        if self._ocpp is not None:
            out.append(self._ocpp_check())
        if self._controller is not None:
            out.append(self._controller_check())
        if self._mqtt is not None:
            connected = bool(getattr(self._mqtt.connected, "is_set", lambda: False)())
            out.append(Check("mqtt", connected, {"connected": connected, "connections": self._mqtt.connections}))
        return out

    def _applier_alive(self) -> bool:
        return any(c.name == "ocpp-applier" and c.up for c in self._supervisor.health())

    def _ocpp_check(self) -> Check:
        ocpp = self._ocpp
        assert ocpp is not None
        if not ocpp.prepared:
            return Check("ocpp", False, {"state": "not started"})
        applier = ocpp.applier
        lag = ocpp.journal.backlog() + applier.in_flight()
        retrying = bool(getattr(applier.retrying, "is_set", lambda: False)())
        alive = self._applier_alive()
        detail: dict[str, object] = {
            "journal_lag": lag,
            "applier_alive": alive,
            "storage_retrying": retrying,
            "stations_connected": len(ocpp.registry),
        }
        counts = getattr(applier, "stats", applier)  # ApplierStats where the applier keeps one
        quarantined = getattr(counts, "quarantined", None)
        if isinstance(quarantined, int):
            detail["quarantined"] = quarantined
        return Check("ocpp", alive and not retrying and lag < MAX_JOURNAL_LAG, detail)

    def _controller_check(self) -> Check:
        assert self._controller is not None
        controller = self._controller
        interval_s = float(getattr(controller.settings, "replan_interval_s", 60.0))
        now = self._clock.now()
        sites: dict[str, object] = {}
        ready = True
        state = getattr(controller, "state", None)
        for site_id in _site_ids(controller):
            record = controller.plans.get(site_id)
            active = len(state.active(site_id)) if state is not None else 0
            entry: dict[str, object] = {"active_sessions": active}
            if record is not None:
                age_s = (now - record.planned_at).total_seconds()
                entry["last_plan_at"] = record.planned_at.isoformat()
                entry["plan_age_s"] = round(age_s, 1)
                schedule = getattr(record, "schedule", None)
                status = getattr(getattr(schedule, "status", None), "value", None)
                if status is not None:
                    entry["plan_status"] = status
                if active and age_s > MAX_PLAN_AGE_INTERVALS * interval_s:
                    ready = False
            elif active:
                # Sessions but no plan: fine for the first intervals (the first re-plan is on its
                # way), not once re-plans have failed for as long as a plan may be old.
                entry["last_plan_at"] = None
                since = controller.unplanned_since.get(site_id)
                if since is None:
                    since = self._unplanned_seen.setdefault(site_id, now)
                unplanned_s = (now - since).total_seconds()
                entry["unplanned_s"] = round(unplanned_s, 1)
                if unplanned_s > MAX_PLAN_AGE_INTERVALS * interval_s:
                    ready = False
            if record is not None or not active:
                self._unplanned_seen.pop(site_id, None)
            sites[site_id] = entry
        return Check("controller", ready, {"replan_failures": controller.replan_failures, "sites": sites})


def _site_ids(controller: object) -> list[str]:
    return [str(getattr(s, "id", s)) for s in getattr(controller, "sites", ())]
