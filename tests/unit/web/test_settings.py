"""The web settings: public URL, secret, test payments."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ems.config import Settings


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_public_url_defaults_to_the_api_address() -> None:
    assert _settings().public_base_url() == "http://127.0.0.1:8000"
    assert _settings(api_host="0.0.0.0", api_port=8080).public_base_url() == "http://127.0.0.1:8080"
    assert _settings(public_url="https://ev.example.com/").public_base_url() == "https://ev.example.com"


@pytest.mark.parametrize("url", ["ftp://x", "ev.example.com", "https://ev.example.com/?a=1"])
def test_a_bad_public_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="EMS_PUBLIC_URL"):
        _settings(public_url=url)


def test_weak_web_secrets_are_refused() -> None:
    with pytest.raises(ValidationError, match="EMS_WEB_SECRET"):
        _settings(web_secret="secret")
    with pytest.raises(ValidationError, match="EMS_WEB_SECRET"):
        _settings(web_secret="short-one")
    assert _settings(web_secret="a-long-enough-web-secret").web_secret is not None
    assert _settings(web_test_payments=True).web_test_payments is True
    assert _settings().web_test_payments is False
