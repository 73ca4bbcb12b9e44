"""Station capabilities: learned from the configuration answer, refusals counted, profiles shaped to fit."""

from ems.controller import capabilities as cap
from ems.controller.capabilities import Capabilities
from ems.domain.commands import ChargingSchedulePeriod, CommandResult, CommandStatus, SetChargingLimit
from ems.domain.station import OcppVersion


def tx(*limits: float) -> SetChargingLimit:
    return SetChargingLimit(
        evse_id=1,
        profile_id=1001,
        purpose="TxProfile",
        stack_level=1,
        rate_unit="A",
        periods=tuple(
            ChargingSchedulePeriod(start_offset_s=300 * i, limit=a, number_phases=3) for i, a in enumerate(limits)
        ),
        duration_s=300 * len(limits),
    )


def test_learned_from_a_16_configuration_answer() -> None:
    answer = CommandResult(
        CommandStatus.ACCEPTED,
        data={
            "configuration_key": [
                {"key": "ChargingScheduleAllowedChargingRateUnit", "value": "Power", "readonly": True},
                {"key": "ChargeProfileMaxStackLevel", "value": "0", "readonly": True},
                {"key": "ChargingScheduleMaxPeriods", "value": "2", "readonly": True},
                {"key": "ConnectorSwitch3to1PhaseSupported", "value": "true", "readonly": True},
            ]
        },
    )
    caps = cap.learn(Capabilities(), OcppVersion.V16, answer)
    assert caps.learned and caps.rate_units == {"W"} and caps.max_stack_level == 0 and caps.max_periods == 2
    assert caps.phase_switching is True
    shaped = cap.shape(tx(16, 10, 16), caps, 230.0, 3)
    assert shaped.rate_unit == "W" and shaped.stack_level == 0
    assert [p.limit for p in shaped.periods] == [11_040.0, 6_900.0]
    assert shaped.duration_s == 600, "cut short where the dropped period began: the default applies after"


def test_learned_from_201_variables_and_silence_keeps_defaults() -> None:
    answer = CommandResult(
        CommandStatus.ACCEPTED,
        data={
            "get_variable_result": [
                {
                    "attribute_status": "Accepted",
                    "component": {"name": "SmartChargingCtrlr"},
                    "variable": {"name": "RateUnit"},
                    "attribute_value": "A,W",
                },
                {
                    "attribute_status": "Accepted",
                    "component": {"name": "SmartChargingCtrlr"},
                    "variable": {"name": "PeriodsPerSchedule"},
                    "attribute_value": "24",
                },
                {
                    "attribute_status": "UnknownVariable",
                    "component": {"name": "SmartChargingCtrlr"},
                    "variable": {"name": "Entries"},
                },
            ]
        },
    )
    caps = cap.learn(Capabilities(), OcppVersion.V201, answer)
    assert caps.rate_units == {"A", "W"} and caps.max_periods == 24 and caps.max_profiles is None
    assert cap.learn(caps, OcppVersion.V201, CommandResult(CommandStatus.TIMEOUT)) == caps
    assert cap.shape(tx(16, 10), caps, 230.0, 3) == tx(16, 10)


def test_a_station_that_refuses_txprofiles_is_no_longer_controlled_until_it_accepts() -> None:
    caps = Capabilities()
    caps = cap.answered(caps, tx(16), CommandStatus.REJECTED)
    assert caps.takes_profiles(), "one refusal may be a race with the end of a transaction"
    caps = cap.answered(caps, tx(16), CommandStatus.REJECTED)
    assert not caps.takes_profiles()
    assert cap.answered(caps, tx(16), CommandStatus.ACCEPTED).takes_profiles()
    assert not cap.answered(Capabilities(), tx(16), CommandStatus.NOT_SUPPORTED).takes_profiles()
    assert cap.answered(Capabilities(), tx(16), CommandStatus.TIMEOUT).takes_profiles(), "silence is not refusal"
