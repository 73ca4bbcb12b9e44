"""The ``ocpp`` library's private internals that ems relies on still exist (pyproject pins ``ocpp>=2.1.0,<2.2``).

``ems.ocpp.link.StationLink`` subclasses ``ocpp.charge_point.ChargePoint`` but routes frames itself:
it feeds answers to the library's ``call()`` through ``_call_lock`` / ``_response_queue``, overrides
``_send`` (which ``call()`` uses to write), and sets ``_ocpp_version`` / ``_call_result`` per version.
``ems.ocpp.validation`` mirrors ``ocpp.messages._validate_payload``'s schema lookup. If an upgrade of
the library renames any of these, this test fails before the server silently stops seeing answers.
"""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version
from typing import Any

import ocpp.messages
import pytest
from ocpp.charge_point import ChargePoint, camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import CallError, CallResult
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v201 import ChargePoint as Cp201


class _NoConnection:
    async def send(self, message: str) -> None:
        raise AssertionError("not used")

    async def recv(self) -> str:
        raise AssertionError("not used")


def test_installed_version_is_in_the_pinned_range() -> None:
    major, minor = (int(p) for p in version("ocpp").split(".")[:2])
    assert (major, minor) == (2, 1)


@pytest.mark.parametrize("cls", [Cp16, Cp201])
async def test_charge_point_has_the_private_members_ems_uses(cls: type[Any]) -> None:
    cp = cls("CP1", _NoConnection(), response_timeout=1)
    assert isinstance(cp._call_lock, asyncio.Lock)
    assert isinstance(cp._response_queue, asyncio.Queue)
    assert isinstance(cp._ocpp_version, str)
    assert inspect.ismodule(cp._call_result)
    assert inspect.iscoroutinefunction(cp._send)
    assert "suppress" in inspect.signature(cp.call).parameters


def test_call_uses_the_members_ems_feeds() -> None:
    """``call()`` writes through ``_send`` and reads answers from ``_response_queue`` under ``_call_lock``."""
    source = inspect.getsource(ChargePoint)
    for member in ("self._send(", "self._response_queue", "self._call_lock", "self._call_result", "self._ocpp_version"):
        assert member in source, member


def test_message_helpers_ems_imports() -> None:
    assert callable(ocpp.messages._validate_payload)
    assert CallResult("1", {}).unique_id == "1"
    assert CallError("1", "InternalError", "", {}).error_code == "InternalError"
    assert camel_to_snake_case({"connectorId": 1}) == {"connector_id": 1}
    assert snake_to_camel_case({"connector_id": 1}) == {"connectorId": 1}
    assert remove_nones({"a": None, "b": 1}) == {"b": 1}
    assert callable(serialize_as_dict)
