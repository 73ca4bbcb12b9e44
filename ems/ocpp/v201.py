"""OCPP 2.0.1 handlers: translate, delegate to ``OcppService``, answer. Nothing else."""

from __future__ import annotations

from typing import ClassVar

from ems.domain.station import OcppVersion
from ems.ocpp import translate as t
from ems.ocpp.link import StationLink, handles

V201 = OcppVersion.V201


class V201Link(StationLink):
    version: ClassVar[OcppVersion] = V201

    @handles("BootNotification")
    async def on_boot(self, p: t.Payload) -> t.Payload:
        return await self.service.boot(self.id, V201, p)

    @handles("Heartbeat")
    async def on_heartbeat(self, p: t.Payload) -> t.Payload:
        return await self.service.heartbeat(self.id)

    @handles("StatusNotification")
    async def on_status(self, p: t.Payload) -> t.Payload:
        return await self.service.record(self.id, V201, "StatusNotification", p, {})

    @handles("Authorize")
    async def on_authorize(self, p: t.Payload) -> t.Payload:
        decision = await self.service.authorize(self.id, p["idToken"]["idToken"])
        return {"idTokenInfo": t.id_token_info_v201(decision.status, decision.expires_at)}

    @handles("TransactionEvent")
    async def on_transaction_event(self, p: t.Payload) -> t.Payload:
        return await self.service.transaction_event(self.id, p)

    @handles("MeterValues")
    async def on_meter_values(self, p: t.Payload) -> t.Payload:
        return await self.service.record(self.id, V201, "MeterValues", p, {})

    @handles("NotifyEVChargingNeeds")
    async def on_charging_needs(self, p: t.Payload) -> t.Payload:
        return await self.service.record(self.id, V201, "NotifyEVChargingNeeds", p, {"status": "Accepted"})

    @handles("DataTransfer")
    async def on_data_transfer(self, p: t.Payload) -> t.Payload:
        return {"status": "UnknownVendorId"}

    @handles("NotifyChargingLimit")
    async def on_charging_limit(self, p: t.Payload) -> t.Payload:
        return self.service.notice(self.id, "NotifyChargingLimit", p)

    @handles("FirmwareStatusNotification")
    async def on_firmware_status(self, p: t.Payload) -> t.Payload:
        return self.service.notice(self.id, "FirmwareStatusNotification", p)

    @handles("LogStatusNotification")
    async def on_log_status(self, p: t.Payload) -> t.Payload:
        return self.service.notice(self.id, "LogStatusNotification", p)

    @handles("SecurityEventNotification")
    async def on_security_event(self, p: t.Payload) -> t.Payload:
        return self.service.notice(self.id, "SecurityEventNotification", p)

    @handles("NotifyReport")
    async def on_notify_report(self, p: t.Payload) -> t.Payload:
        return self.service.notice(self.id, "NotifyReport", p)

    @handles("NotifyEvent")
    async def on_notify_event(self, p: t.Payload) -> t.Payload:
        return self.service.notice(self.id, "NotifyEvent", p)

    @handles("ReportChargingProfiles")
    async def on_report_profiles(self, p: t.Payload) -> t.Payload:
        return self.service.notice(self.id, "ReportChargingProfiles", p)
