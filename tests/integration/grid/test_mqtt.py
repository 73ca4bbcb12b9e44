"""The MQTT adapter against a real Mosquitto: forecasts in, acks, errors and status out, faults."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from ems.domain.capacity import CapacityChangeReason, SignalKind
from ems.domain.events import CapacityChanged
from tests.integration.grid.conftest import WAIT_S, PrivateBroker, forecast, listening, make_site, running_grid

pytestmark = pytest.mark.mqtt


async def test_forecast_changes_capacity_and_is_acked_with_status() -> None:
    site = make_site()
    async with running_grid(site) as grid, listening(site.id) as op:
        await op.publish(grid.topic("capacity/forecast"), forecast(40, "f-1"))
        ack = await op.expect(grid.topic("capacity/ack"))
        assert ack["message_id"] == "f-1" and ack["accepted"] is True
        assert ack["in_force"]["capacity_w"] == 40_000
        assert grid.service.in_force(site.id).capacity_w == 40_000
        status = await op.expect(grid.topic("status"))
        while status["limit"]["capacity_w"] != 40_000:  # the connect-time status may come first
            status = await op.expect(grid.topic("status"))
        assert status["measured"]["power_w"] == 15_000
        assert status["headroom_w"] == 25_000
        assert status["active_sessions"] == 2
        assert status["stale"] is False
        await asyncio.wait_for(grid.service.flush(), WAIT_S)
        assert grid.store.rows[0][1] is True


async def test_circuit_limit_topic() -> None:
    site = make_site()
    async with running_grid(site) as grid, listening(site.id) as op:
        await op.publish(
            grid.topic("circuits/feeder-a/capacity/limit"),
            {"forecasted_blocks": [{"capacity": 32, "unit": "A", "phase": "ALL"}]},
        )
        ack = await op.expect(grid.topic("capacity/ack"))
        assert (ack["circuit_id"], ack["kind"]) == ("feeder-a", "limit")
        assert grid.service.in_force(site.id, "feeder-a").phase_limits_a == {"L1": 32, "L2": 32, "L3": 32}
        await op.publish(grid.topic("circuits/feeder-z/capacity/limit"), {"forecasted_blocks": []})
        error = await op.expect(grid.topic("capacity/errors"))
        assert error["problems"] == [f"unknown circuit 'feeder-z' of site {site.id!r}"]


async def test_garbage_gets_an_error_and_the_subscriber_keeps_running() -> None:
    site = make_site()
    async with running_grid(site) as grid, listening(site.id) as op:
        await op.publish(grid.topic("capacity/forecast"), b"\x00not json at all")
        error = await op.expect(grid.topic("capacity/errors"))
        assert error["accepted"] is False and error["problems"][0].startswith("malformed JSON")
        bad = forecast(-3, "neg")
        await op.publish(grid.topic("capacity/forecast"), bad)
        error = await op.expect(grid.topic("capacity/errors"))
        assert error["message_id"] == "neg" and "must not be negative" in error["problems"][0]
        assert grid.service.in_force(site.id).capacity_w == 100_000  # nothing applied
        await op.publish(grid.topic("capacity/forecast"), forecast(30, "after-garbage"))
        ack = await op.expect(grid.topic("capacity/ack"))
        assert ack["message_id"] == "after-garbage"
        await asyncio.wait_for(grid.service.flush(), WAIT_S)
        assert [accepted for _, accepted, _ in grid.store.rows] == [False, False, True]


async def test_silence_falls_to_the_failsafe_and_status_says_stale() -> None:
    site = make_site(stale_after_s=0.5)
    async with running_grid(site) as grid, listening(site.id) as op:
        changes = grid.bus.subscribe(CapacityChanged, name="test")
        await op.publish(grid.topic("capacity/forecast"), forecast(40, "f-1"))
        await op.expect(grid.topic("capacity/ack"))

        async def stale_event() -> CapacityChanged:
            while True:
                event = await changes.get()
                if event.reason is CapacityChangeReason.STALE and event.circuit_id is None:
                    return event

        event = await asyncio.wait_for(stale_event(), WAIT_S)
        assert event.capacity_w == 11_000 and event.stale
        status = await op.expect(grid.topic("status"))
        while not status["stale"]:
            status = await op.expect(grid.topic("status"))
        assert status["limit"]["capacity_w"] == 11_000 and status["limit"]["capacity_source"] == "failsafe"
        await op.publish(grid.topic("capacity/forecast"), forecast(40, "f-2"))
        ack = await op.expect(grid.topic("capacity/ack"))
        assert ack["in_force"]["capacity_w"] == 40_000 and ack["in_force"]["stale"] is False


async def test_retained_forecast_is_picked_up_at_start_without_counting_as_fresh() -> None:
    site = make_site()
    async with listening(site.id) as op:
        topic = f"ems/v1/sites/{site.id}/capacity/forecast"
        await op.publish(topic, forecast(25, "retained-1"), retain=True)
        try:
            async with running_grid(site) as grid:
                ack = await op.expect(grid.topic("capacity/ack"))
                assert ack["message_id"] == "retained-1"
                assert grid.service.in_force(site.id).capacity_w == 25_000
        finally:
            await op.publish(topic, b"", retain=True)  # clear the retained message on the shared broker


async def test_qos1_messages_sent_while_ems_is_away_arrive_on_its_return() -> None:
    site = make_site()
    client_id = f"ems-test-persist-{site.id}"
    async with listening(site.id) as op:
        async with running_grid(site, client_id=client_id):
            pass  # the broker now holds a persistent session for client_id
        await op.publish(
            f"ems/v1/sites/{site.id}/capacity/limit",
            {"message_id": "while-away", "forecasted_blocks": [{"capacity": 9, "unit": "KW"}]},
        )
        async with running_grid(site, client_id=client_id) as grid:
            ack = await op.expect(grid.topic("capacity/ack"))
            assert ack["message_id"] == "while-away"
            assert grid.service.latest(site.id, None, SignalKind.LIMIT) is not None


async def test_broker_restart_reconnects_resubscribes_and_keeps_retained_forecasts(
    private_broker: PrivateBroker,
) -> None:
    site = make_site()
    async with running_grid(site, port=private_broker.port) as grid:
        async with listening(site.id, port=private_broker.port) as op:
            await op.publish(grid.topic("capacity/forecast"), forecast(44, "retained-before"), retain=True)
            await op.expect_ack(grid.topic("capacity/ack"), "retained-before")
        private_broker.stop()
        await asyncio.wait_for(grid.adapter.disconnected.wait(), WAIT_S)
        private_broker.start()
        async with listening(site.id, port=private_broker.port) as op:
            await asyncio.wait_for(grid.adapter.connected.wait(), WAIT_S)
            assert grid.adapter.connections == 2
            await op.publish(grid.topic("capacity/forecast"), forecast(33, "after-restart"))
            await op.expect_ack(grid.topic("capacity/ack"), "after-restart")
            assert grid.service.in_force(site.id).capacity_w == 33_000
            # A fresh ems on the restarted broker still gets the retained forecast: it survived the restart.
            async with running_grid(site, port=private_broker.port) as fresh:
                ack = await op.expect_ack(grid.topic("capacity/ack"), "retained-before")
                assert ack["duplicate"] is False
                assert fresh.service.in_force(site.id).capacity_w == 44_000


async def test_status_is_published_periodically_and_retained() -> None:
    site = make_site()
    async with running_grid(site, status_interval_s=0.2) as grid, listening(site.id) as op:
        first = await op.expect(grid.topic("status"))
        second = await op.expect(grid.topic("status"))
        assert second["at"] > first["at"] and second["limit"]["capacity_w"] == 100_000
    async with listening(site.id) as late:  # a newcomer gets the last status at once: it is retained
        status = await late.expect(f"ems/v1/sites/{site.id}/status")
        assert status["site_id"] == site.id
        await late.publish(f"ems/v1/sites/{site.id}/status", b"", retain=True)  # tidy the shared broker


async def test_mqtt_311_is_accepted() -> None:
    site = make_site()
    async with running_grid(site, protocol=aiomqtt.ProtocolVersion.V311) as grid, listening(site.id) as op:
        await op.publish(grid.topic("capacity/forecast"), forecast(12, "v311"))
        ack = await op.expect(grid.topic("capacity/ack"))
        assert ack["message_id"] == "v311" and ack["in_force"]["capacity_w"] == 12_000
