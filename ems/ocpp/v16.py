"""OCPP 1.6J handlers: translate, delegate to ``OcppService``, answer. Nothing else."""

from __future__ import annotations

from typing import ClassVar

from ems.domain.station import OcppVersion
from ems.ocpp import translate as t
from ems.ocpp.link import StationLink, handles

V16 = OcppVersion.V16


class V16Link(StationLink):
    version: ClassVar[OcppVersion] = V16

    @handles("BootNotification")
    async def on_boot(self, p: t.Payload) -> t.Payload:
        return await self.service.boot(self.id, V16, p)

    @handles("Heartbeat")
    async def on_heartbeat(self, p: t.Payload) -> t.Payload:
        return await self.service.heartbeat(self.id)

    @handles("StatusNotification")
    async def on_status(self, p: t.Payload) -> t.Payload:
        return await self.service.record(self.id, V16, "StatusNotification", p, {})

    @handles("Authorize")
    async def on_authorize(self, p: t.Payload) -> t.Payload:
        decision = await self.service.authorize(self.id, p["idTag"])
        return {"idTagInfo": t.id_tag_info_v16(decision.status, decision.expires_at)}

    @handles("StartTransaction")
    async def on_start(self, p: t.Payload) -> t.Payload:
        return await self.service.start_v16(self.id, p)

    @handles("StopTransaction")
    async def on_stop(self, p: t.Payload) -> t.Payload:
        return await self.service.record(self.id, V16, "StopTransaction", p, t.stop_response_v16(p.get("idTag")))

    @handles("MeterValues")
    async def on_meter_values(self, p: t.Payload) -> t.Payload:
        return await self.service.record(self.id, V16, "MeterValues", p, {})

    @handles("DataTransfer")
    async def on_data_transfer(self, p: t.Payload) -> t.Payload:
        return {"status": "UnknownVendorId"}

    @handles("FirmwareStatusNotification")
    async def on_firmware_status(self, p: t.Payload) -> t.Payload:
        return self.service.notice(self.id, "FirmwareStatusNotification", p)

    @handles("DiagnosticsStatusNotification")
    async def on_diagnostics_status(self, p: t.Payload) -> t.Payload:
        return self.service.notice(self.id, "DiagnosticsStatusNotification", p)
