"""What a simulated station answers to the CSMS's commands (OCPP 1.6 and 2.0.1 handlers).

Handlers only decide and record; anything that takes time (starting, stopping a
transaction) becomes an ``Intent`` on the station's queue, run by its intent loop after
the answer is sent, as a real charger does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from ocpp.routing import on as _on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call_result as r16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call_result as r201
from websockets.asyncio.client import ClientConnection

from ems.clock import Clock
from ems.ocpp import translate as t
from ems.sim.profiles import Profile, profile_from_v16, profile_from_v201
from ems.sim.state import IntentKind, SimEvse

F = TypeVar("F", bound=Callable[..., Any])

CALL_TIMEOUT_S = 30
"""OCPP-J's usual message timeout for a CALL's answer."""


class CommandTarget(Protocol):
    """What the handlers read and change on the station (``ems.sim.station.SimStation`` implements it).

    A Protocol here, not an import of the station: the station builds its handlers, so the
    handlers must not import the station (that was an import cycle).
    """

    evses: dict[int, SimEvse]
    config: dict[str, str]
    clock: Clock

    def request(
        self, kind: IntentKind, evse_id: int, *, id_tag: str | None = None, remote_start_id: int | None = None
    ) -> None: ...

    def find_tx(self, transaction_id: str) -> SimEvse | None: ...

    def pick_evse(self, evse_id: int | None) -> int | None: ...

    def install_profile(self, profile: Profile) -> None: ...

    def clear_profiles(
        self, profile_id: int | None, evse_id: int | None, purpose: str | None, stack_level: int | None
    ) -> bool: ...

    def limit_w(self, evse_id: int) -> float | None: ...


def on(action: str) -> Callable[[F], F]:
    """The library's ``@on``, typed."""
    return cast(Callable[[F], F], _on(action))


class Cp16Handlers(Cp16):  # type: ignore[misc]
    def __init__(self, station_id: str, ws: ClientConnection, sim: CommandTarget) -> None:
        super().__init__(station_id, ws, response_timeout=CALL_TIMEOUT_S)
        self.sim = sim

    @on("RemoteStartTransaction")
    def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, charging_profile: Any = None, **_: Any
    ) -> Any:
        evse_id = self.sim.pick_evse(connector_id)
        if evse_id is None:
            return r16.RemoteStartTransaction(status="Rejected")
        if charging_profile:
            self.sim.install_profile(profile_from_v16(evse_id, charging_profile))
        self.sim.request(IntentKind.START, evse_id, id_tag=id_tag, remote_start_id=0)
        return r16.RemoteStartTransaction(status="Accepted")

    @on("RemoteStopTransaction")
    def on_remote_stop(self, transaction_id: int, **_: Any) -> Any:
        evse = self.sim.find_tx(str(transaction_id))
        if evse is None:
            return r16.RemoteStopTransaction(status="Rejected")
        self.sim.request(IntentKind.STOP, evse.id, id_tag="Remote")
        return r16.RemoteStopTransaction(status="Accepted")

    @on("SetChargingProfile")
    def on_set_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any) -> Any:
        profile = profile_from_v16(connector_id, cs_charging_profiles)
        evse = self.sim.evses.get(connector_id)
        if profile.purpose == "TxProfile" and (evse is None or evse.tx is None):
            return r16.SetChargingProfile(status="Rejected")  # 1.6: a TxProfile needs a transaction
        self.sim.install_profile(profile)
        return r16.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> Any:
        cleared = self.sim.clear_profiles(id, connector_id, charging_profile_purpose, stack_level)
        return r16.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on("GetCompositeSchedule")
    def on_composite(self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any) -> Any:
        limit = self.sim.limit_w(connector_id) if connector_id else None
        schedule = None
        if limit is not None:
            schedule = {
                "charging_rate_unit": "W",
                "duration": duration,
                "charging_schedule_period": [{"start_period": 0, "limit": round(limit, 1)}],
            }
        return r16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=t.format_time(self.sim.clock.now()),
            charging_schedule=schedule,
        )

    @on("ChangeAvailability")
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> Any:
        return r16.ChangeAvailability(status="Accepted")

    @on("Reset")
    def on_reset(self, type: str, **_: Any) -> Any:
        return r16.Reset(status="Accepted")

    @on("UnlockConnector")
    def on_unlock(self, connector_id: int, **_: Any) -> Any:
        return r16.UnlockConnector(status="Unlocked" if connector_id in self.sim.evses else "NotSupported")

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, connector_id: int | None = None, **_: Any) -> Any:
        if requested_message == "MeterValues" and connector_id in self.sim.evses:
            self.sim.evses[connector_id].last_meter_at = None
            return r16.TriggerMessage(status="Accepted")
        return r16.TriggerMessage(status="NotImplemented")

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        wanted = key or list(self.sim.config)
        known = [{"key": k, "readonly": False, "value": self.sim.config[k]} for k in wanted if k in self.sim.config]
        unknown = [k for k in wanted if k not in self.sim.config]
        return r16.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        if key not in self.sim.config:
            return r16.ChangeConfiguration(status="NotSupported")
        self.sim.config[key] = value
        return r16.ChangeConfiguration(status="Accepted")

    @on("GetLocalListVersion")
    def on_local_list_version(self, **_: Any) -> Any:
        return r16.GetLocalListVersion(list_version=0)


class Cp201Handlers(Cp201):  # type: ignore[misc]
    def __init__(self, station_id: str, ws: ClientConnection, sim: CommandTarget) -> None:
        super().__init__(station_id, ws, response_timeout=CALL_TIMEOUT_S)
        self.sim = sim

    @on("RequestStartTransaction")
    def on_request_start(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: Any = None,
        **_: Any,
    ) -> Any:
        chosen = self.sim.pick_evse(evse_id)
        if chosen is None:
            return r201.RequestStartTransaction(status="Rejected")
        if charging_profile:
            self.sim.install_profile(profile_from_v201(chosen, charging_profile))
        self.sim.request(IntentKind.START, chosen, id_tag=id_token["id_token"], remote_start_id=remote_start_id)
        return r201.RequestStartTransaction(status="Accepted")

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        evse = self.sim.find_tx(transaction_id)
        if evse is None:
            return r201.RequestStopTransaction(status="Rejected")
        self.sim.request(IntentKind.STOP, evse.id, id_tag="Remote")
        return r201.RequestStopTransaction(status="Accepted")

    @on("SetChargingProfile")
    def on_set_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        self.sim.install_profile(profile_from_v201(evse_id, charging_profile))
        return r201.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear_profile(
        self, charging_profile_id: int | None = None, charging_profile_criteria: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        c = charging_profile_criteria or {}
        cleared = self.sim.clear_profiles(
            charging_profile_id, c.get("evse_id"), c.get("charging_profile_purpose"), c.get("stack_level")
        )
        return r201.ClearChargingProfile(status="Accepted" if cleared else "Unknown")

    @on("GetCompositeSchedule")
    def on_composite(self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any) -> Any:
        limit = self.sim.limit_w(evse_id) if evse_id else None
        schedule = None
        if limit is not None:
            schedule = {
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": t.format_time(self.sim.clock.now()),
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": round(limit, 1)}],
            }
        return r201.GetCompositeSchedule(status="Accepted", schedule=schedule)

    @on("ChangeAvailability")
    def on_change_availability(self, operational_status: str, **_: Any) -> Any:
        return r201.ChangeAvailability(status="Accepted")

    @on("Reset")
    def on_reset(self, type: str, **_: Any) -> Any:
        return r201.Reset(status="Scheduled" if any(e.tx for e in self.sim.evses.values()) else "Accepted")

    @on("UnlockConnector")
    def on_unlock(self, evse_id: int, connector_id: int, **_: Any) -> Any:
        return r201.UnlockConnector(status="Unlocked" if evse_id in self.sim.evses else "UnknownConnector")

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any) -> Any:
        evse_id = (evse or {}).get("id")
        if requested_message == "MeterValues" and evse_id in self.sim.evses:
            self.sim.evses[evse_id].last_meter_at = None
            return r201.TriggerMessage(status="Accepted")
        return r201.TriggerMessage(status="NotImplemented")

    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in get_variable_data:
            name = item["variable"]["name"]
            value = self.sim.config.get(name)
            result = {
                "attribute_status": "Accepted" if value is not None else "UnknownVariable",
                "component": item["component"],
                "variable": item["variable"],
            }
            if value is not None:
                result["attribute_value"] = value
            results.append(result)
        return r201.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            self.sim.config[item["variable"]["name"]] = item["attribute_value"]
            results.append(
                {"attribute_status": "Accepted", "component": item["component"], "variable": item["variable"]}
            )
        return r201.SetVariables(set_variable_result=results)

    @on("GetLocalListVersion")
    def on_local_list_version(self, **_: Any) -> Any:
        return r201.GetLocalListVersion(version_number=0)
