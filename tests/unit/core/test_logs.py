"""EMS_LOG_FORMAT=json: one JSON object per line, extras and tracebacks included; no websockets noise at INFO."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from ems.logs import NOISY, configure_logging
from ems.throttle import security_event


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in NOISY}
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    for name, lvl in levels.items():
        logging.getLogger(name).setLevel(lvl)


def test_json_lines_carry_extras_and_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    security_event("api_auth_failed", source="10.0.0.9", reason="unknown API key", lockout_s=0.0)
    try:
        raise OverflowError("date value out of range")
    except OverflowError:
        logging.getLogger("ems.supervisor").exception("component ocpp-applier failed")
    logging.getLogger("ems.test").debug("not at INFO")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 2
    event, failure = lines
    assert event["level"] == "WARNING" and event["logger"] == "ems.security"
    assert event["security_event"] == "api_auth_failed" and event["source"] == "10.0.0.9"
    assert event["ts"].endswith("+00:00")
    assert failure["message"] == "component ocpp-applier failed"
    assert "OverflowError: date value out of range" in failure["exception"]


def test_text_is_the_default_and_websockets_is_quiet_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    logging.getLogger("websockets.server").info("connection open")
    logging.getLogger("fontTools.subset").info("maxp pruned")  # the sticker sheet's font subsetting
    logging.getLogger("ems.ocpp.server").info("OCPP server listening")
    err = capsys.readouterr().err
    assert "connection open" not in err and "maxp pruned" not in err
    assert "INFO ems.ocpp.server: OCPP server listening" in err
    configure_logging("DEBUG")
    assert logging.getLogger("websockets.server").isEnabledFor(logging.DEBUG)
