"""Pure rules of the driver pages: phone keys, PIN rules, CSRF tokens, charger states."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from ems.domain.driver import phone_key, pin_problem
from ems.domain.station import ConnectorStatus
from ems.web.i18n import Texts
from ems.web.security import CSRF_COOKIE, Csrf
from ems.web.views import charger_state, duration


@pytest.mark.parametrize(
    ("phone", "key"),
    [
        ("+46 70-123 45 67", "+46701234567"),
        ("070 123 45 67", "0701234567"),
        (" +1 (555) 0100", "+15550100"),
        ("n/a", ""),
    ],
)
def test_phone_key(phone: str, key: str) -> None:
    assert phone_key(phone) == key


@pytest.mark.parametrize(
    ("pin", "problem"),
    [
        ("1234", None),
        ("12345678", None),
        ("123", "4 to 8"),
        ("123456789", "4 to 8"),
        ("12a4", "digits"),
        ("١٢٣٤", "digits"),
    ],
)
def test_pin_rules(pin: str, problem: str | None) -> None:
    why = pin_problem(pin)
    assert (why is None) if problem is None else (why is not None and problem in why)


def _request(cookie: str | None) -> Request:
    headers = [(b"cookie", f"{CSRF_COOKIE}={cookie}".encode())] if cookie else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""})


def test_csrf_token_is_bound_to_the_browser_cookie_and_the_secret() -> None:
    csrf = Csrf(b"s" * 32)
    seed = "a" * 32
    token = csrf.token(seed)
    assert csrf.valid(_request(seed), token)
    assert not csrf.valid(_request("b" * 32), token)  # another browser's token
    assert not csrf.valid(_request(seed), Csrf(b"t" * 32).token(seed))  # another server's secret
    assert not csrf.valid(_request(None), token)
    assert not csrf.valid(_request(seed), None)


def test_charger_states_say_what_to_do() -> None:
    t = Texts("en")
    assert charger_state(t, online=False, status=ConnectorStatus.AVAILABLE, error_code=None).can_start is False
    faulted = charger_state(t, online=True, status=ConnectorStatus.FAULTED, error_code="GroundFailure")
    assert (faulted.can_start, faulted.label) == (False, "Fault (GroundFailure)")
    assert "another charger" in (faulted.message or "")
    busy = charger_state(t, online=True, status=ConnectorStatus.CHARGING, error_code=None)
    assert busy.can_start is False and "Someone else" in (busy.message or "")
    assert charger_state(t, online=True, status=ConnectorStatus.PREPARING, error_code=None).can_start
    assert charger_state(t, online=True, status=None, error_code=None).can_start


def test_duration() -> None:
    assert duration(Texts("en"), 59) == "0 min"
    assert duration(Texts("en"), 3_725) == "1 h 2 min"
