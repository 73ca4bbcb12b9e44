"""The driver pages' languages: catalogs complete and consistent with the source, negotiation, formats."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from ems.domain.tariff import Tariff
from ems.web.i18n import LANGUAGES, Texts, format_locale, negotiate, translations
from ems.web.views import price_lines

WEB = Path(__file__).parents[3] / "ems" / "web"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _source_ids() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = extract_from_dir(str(WEB), method_map, keywords={"gettext": None, "_": None})
    return {message for _, _, message, _, _ in found if isinstance(message, str) and message}


def _catalog(lang: str) -> dict[str, str]:
    text = resources.files("ems.web").joinpath(f"locale/{lang}/LC_MESSAGES/messages.po").read_text("utf-8")
    return {m.id: m.string for m in read_po(io.StringIO(text)) if m.id and isinstance(m.id, str)}


@pytest.mark.parametrize("lang", [code for code in LANGUAGES if code != "en"])
def test_every_visible_string_is_translated_with_the_same_placeholders(lang: str) -> None:
    catalog = _catalog(lang)
    source = _source_ids()
    assert source, "the extraction found the strings"
    assert sorted(source - set(catalog)) == [], f"{lang}: untranslated (run the extraction in docs/web.md)"
    for msgid in source:
        assert catalog[msgid], f"{lang}: empty translation of {msgid!r}"
        assert set(_PLACEHOLDER.findall(catalog[msgid])) == set(_PLACEHOLDER.findall(msgid)), (lang, msgid)


def test_compiled_catalog_translates() -> None:
    assert translations("sv").gettext("Start charging") == "Starta laddningen"
    assert translations("is").gettext("Sign in") == "Skrá inn"
    assert Texts("te").gettext("Connector {n}", n=2) == "కనెక్టర్ 2"
    assert Texts("en").gettext("Stop charging") == "Stop charging"


@pytest.mark.parametrize(
    ("query", "cookie", "header", "expected"),
    [
        (None, None, "sv-SE,sv;q=0.9", "sv"),
        (None, None, "de-DE, is;q=0.3", "is"),
        (None, None, "gu;q=0.1, te;q=0.8", "te"),
        (None, None, "te;q=0, fr", "en"),
        (None, "gu", "sv", "gu"),
        ("is", "gu", "sv", "is"),
        ("xx", None, None, "en"),
        (None, None, "garbage;q=abc,,", "en"),
    ],
)
def test_negotiate(query: str | None, cookie: str | None, header: str | None, expected: str) -> None:
    assert negotiate(query, cookie, header) == expected


def test_amounts_and_dates_follow_the_locale() -> None:
    at = datetime(2026, 12, 2, 15, 5, tzinfo=UTC)
    assert Texts("sv").money(Decimal("1234.5"), "SEK") == "1\xa0234,50\xa0kr"
    assert Texts("is").money(Decimal("1234.5"), "EUR").startswith("1.234,50")
    assert Texts("en", format_locale("en", "en-GB,en;q=0.8")).when(at, "Europe/London") == "2 Dec 2026, 15:05:00 GMT"
    assert Texts("en").when(at, "Europe/Stockholm").endswith("4:05:00\u202fPM CET")
    assert Texts("en").money(Decimal("0.2975"), "EUR", exact=True) == "€0.2975"


def test_price_in_words() -> None:
    tariff = Tariff(
        "t",
        "T",
        "EUR",
        energy_per_kwh=Decimal("0.30"),
        time_per_minute=Decimal("0.02"),
        session_fee=Decimal("1"),
        idle_per_minute=Decimal("0.10"),
        idle_grace_minutes=15,
        vat_percent=Decimal("25.5"),
    )
    assert price_lines(Texts("en"), tariff) == [
        "€0.30 per kWh",
        "€0.02 per minute of charging",
        "€1.00 per session",
        "Idle fee: €0.10 per minute, starting 15 minutes after charging ends",
        "Prices exclude VAT of 25.5%.",
    ]
    assert price_lines(Texts("sv"), tariff)[0] == "0,30\xa0€ per kWh"
    assert price_lines(Texts("en"), Tariff("f", "Free", "EUR")) == ["Charging here is free."]
