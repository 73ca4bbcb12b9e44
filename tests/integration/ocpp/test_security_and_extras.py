"""Security profile 2 (TLS + Basic), half-open takeover, the raw-frame audit log, EV charging needs."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.v201 import call as c201
from websockets.exceptions import InvalidStatus

from ems.clock import FakeClock
from ems.domain.events import SessionStarted, SessionUpdated, StationConnected, StationDisconnected
from ems.domain.station import OcppVersion
from ems.ocpp.server import OcppServerConfig
from ems.storage.factory import SqlStorage
from tests.integration.ocpp.conftest import WAIT_S, OcppEnv, start_env, stop_env

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_security_profile_2_tls_with_basic_auth(
    storage: SqlStorage, tmp_path: Path, version: OcppVersion
) -> None:
    cert, key = self_signed(tmp_path)
    env, stop, task = await start_env(
        storage, tmp_path / "j.db", OcppServerConfig(port=0, tls_cert=cert, tls_key=key, require_password=True)
    )
    try:
        assert env.url.startswith("wss://")
        trust = ssl.create_default_context(cafile=str(cert))
        good = await env.booted("CP-TLS", version, password="tls-password-1", ssl_context=trust)
        assert good.stats.boot_status == "Accepted"
        await good.close()
        bad = await env.station("CP-TLS", version, password="not-the-one", ssl_context=trust, register=False)
        with pytest.raises(InvalidStatus) as refused:
            await bad.connect()
        assert refused.value.response.status_code == 401
        untrusting = await env.station("CP-TLS", version, password="tls-password-1", register=False)
        untrusting.url = untrusting.url.replace("ws://", "wss://")
        with pytest.raises(ssl.SSLCertVerificationError):
            await untrusting.connect()
    finally:
        await stop_env(env, stop, task)


async def test_station_without_password_refused_when_passwords_required(storage: SqlStorage, tmp_path: Path) -> None:
    env, stop, task = await start_env(storage, tmp_path / "j.db", OcppServerConfig(port=0, require_password=True))
    try:
        sim = await env.station("CP-NOPW", OcppVersion.V16)
        with pytest.raises(InvalidStatus) as refused:
            await sim.connect()
        assert refused.value.response.status_code == 401
    finally:
        await stop_env(env, stop, task)


async def test_half_open_connection_is_replaced(env: OcppEnv, version: OcppVersion) -> None:
    """The old connection stops answering pings (as a half-open TCP link does); a reconnect takes over."""
    old = await env.booted("CP-HALF", version)
    await env.wait_for(StationConnected, lambda e: e.station_id == "CP-HALF")
    assert old.link.ws is not None
    old.link.ws.transport.pause_reading()  # no more pongs from the old link
    new = await env.station("CP-HALF", version, register=False)
    await new.connect()  # the env fixture probes for 1 s, then replaces the silent connection
    await new.boot()
    assert new.stats.boot_status == "Accepted" and env.runtime.control.is_online("CP-HALF")
    assert not any(isinstance(e, StationDisconnected) and e.station_id == "CP-HALF" for e in env.seen)
    old.link.ws.transport.resume_reading()


async def test_audit_log_keeps_raw_frames(storage: SqlStorage, tmp_path: Path) -> None:
    env, stop, task = await start_env(storage, tmp_path / "j.db", OcppServerConfig(port=0, audit_frames=True))
    try:
        sim = await env.booted("CP-AUDIT", OcppVersion.V16)
        await sim.heartbeat()
        await env.drained()
        frames = await env.runtime.journal.audit_frames("CP-AUDIT")
        directions = [d for _, d, _ in frames]
        assert "in" in directions and "out" in directions
        assert any('"Heartbeat"' in f for _, d, f in frames if d == "in")
        assert all(at.tzinfo is not None for at, _, _ in frames)
    finally:
        await stop_env(env, stop, task)


async def test_ev_charging_needs_go_onto_the_session(env: OcppEnv) -> None:
    clock = FakeClock(T0)
    sim = await env.booted("CP-NEEDS", OcppVersion.V201, clock=clock)
    await sim.start(1, "GOOD-CARD")
    started = await env.wait_for(SessionStarted, lambda e: e.station_id == "CP-NEEDS")
    needs = c201.NotifyEVChargingNeeds(
        evse_id=1,
        charging_needs={
            "requested_energy_transfer": "DC",
            "departure_time": "2026-01-05T17:00:00Z",
            "dc_charging_parameters": {
                "ev_max_current": 100,
                "ev_max_voltage": 400,
                "energy_amount": 30000,
                "ev_max_power": 50000,
            },
        },
    )
    answer = await sim._call(needs)
    assert answer.status == "Accepted"
    await env.wait_for(SessionUpdated, lambda e: e.session_id == started.session_id)
    await asyncio.wait_for(env.runtime.drained(), WAIT_S)
    session = await env.storage.sessions.get(started.session_id)
    assert session is not None
    assert session.departure_at == datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
    assert session.energy_requested_wh == 30_000 and session.ev_max_power_w == 50_000
