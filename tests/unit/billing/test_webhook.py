from datetime import UTC, datetime

import pytest

from ems.billing.webhook import InvalidSignature, sign, verify

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
SECRET = b"whsec-test-0123456789"
BODY = b'{"id":"evt_1","amount":"10.00"}'


def test_a_fresh_signature_verifies() -> None:
    t = int(NOW.timestamp()) - 10
    assert verify(SECRET, sign(SECRET, BODY, t), BODY, NOW) == t


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing"),
        ("v1=abc", "malformed"),
        (sign(b"other-secret", BODY, int(NOW.timestamp())), "does not match"),
        (sign(SECRET, BODY + b" ", int(NOW.timestamp())), "does not match"),
        (sign(SECRET, BODY, int(NOW.timestamp()) - 301), "outside the 300 s window"),
    ],
)
def test_bad_signatures_are_refused(header: str | None, message: str) -> None:
    with pytest.raises(InvalidSignature, match=message):
        verify(SECRET, header, BODY, NOW)
