"""Pure parts of the MQTT adapter: topic routing and broker URLs."""

from __future__ import annotations

import aiomqtt
import pytest

from ems.domain.capacity import SignalKind
from ems.errors import ConfigError
from ems.grid.mqtt import MqttOptions, Route, parse_topic


@pytest.mark.parametrize(
    ("topic", "route"),
    [
        ("ems/v1/sites/depot/capacity/forecast", Route("depot", None, SignalKind.FORECAST)),
        ("ems/v1/sites/depot/capacity/limit", Route("depot", None, SignalKind.LIMIT)),
        ("ems/v1/sites/depot/circuits/feeder-a/capacity/limit", Route("depot", "feeder-a", SignalKind.LIMIT)),
        ("ems/v1/sites/depot/capacity/ack", None),
        ("ems/v1/sites/depot/status", None),
        ("ems/v1/sites/depot/circuits/feeder-a/capacity", None),
        ("other/v1/sites/depot/capacity/forecast", None),
    ],
)
def test_parse_topic(topic: str, route: Route | None) -> None:
    assert parse_topic(topic) == route


def test_options_from_url() -> None:
    plain = MqttOptions.from_url("mqtt://broker:1884", username="u", password="p", client_id="ems-a")
    assert (plain.host, plain.port, plain.tls, plain.protocol) == ("broker", 1884, False, aiomqtt.ProtocolVersion.V5)
    assert (plain.username, plain.password, plain.client_id) == ("u", "p", "ems-a")
    tls = MqttOptions.from_url("mqtts://user:s%40cret@broker?protocol=3.1.1")
    assert (tls.port, tls.tls, tls.protocol) == (8883, True, aiomqtt.ProtocolVersion.V311)
    assert (tls.username, tls.password) == ("user", "s@cret")
    with pytest.raises(ConfigError):
        MqttOptions.from_url("http://broker")
