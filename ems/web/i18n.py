"""Languages of the driver pages: gettext catalogs compiled from the committed ``.po`` files at first use.

English is the source language; ``locale/<lang>/LC_MESSAGES/messages.po`` holds each
translation. They are compiled in memory (Babel's ``write_mo``) the first time a language is
used, so a fresh clone needs no build step. The language comes from ``?lang=``, then the
``ems_lang`` cookie, then ``Accept-Language``.
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

LANGUAGES: dict[str, str] = {
    "en": "English",
    "gu": "ગુજરાતી",
    "te": "తెలుగు",
    "sv": "Svenska",
    "is": "Íslenska",
}
"""Language code -> its own name (what the switch shows)."""
DEFAULT_LANGUAGE = "en"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of ``lang`` (English: no translation)."""
    if lang == DEFAULT_LANGUAGE or lang not in LANGUAGES:
        return gettext.NullTranslations()
    po = resources.files("ems.web").joinpath(f"locale/{lang}/LC_MESSAGES/messages.po")
    if not po.is_file():
        return gettext.NullTranslations()
    catalog = read_po(io.StringIO(po.read_text(encoding="utf-8")), locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def _preferences(accept_language: str | None) -> list[str]:
    """The ``Accept-Language`` tags, most wanted first (``q=0`` dropped), at most 20."""
    wanted = []
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0 and len(tag) <= 35:
            wanted.append((q, tag.replace("_", "-")))
    return [tag for _, tag in sorted(wanted, key=lambda item: -item[0])]


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The language to answer in: an explicit choice, else the browser's preference, else English."""
    for choice in (query, cookie):
        if choice in LANGUAGES:
            return choice
    for tag in _preferences(accept_language):
        base = tag.split("-")[0].lower()
        if base in LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


def format_locale(lang: str, accept_language: str | None) -> str:
    """The browser's own regional variant of ``lang`` for numbers and dates (``en-GB``), else ``lang``."""
    for tag in _preferences(accept_language):
        if tag.split("-")[0].lower() == lang and "-" in tag:
            try:
                Locale.parse(tag, sep="-")
            except (UnknownLocaleError, ValueError):
                continue
            return tag
    return lang


@cache
def _locale(tag: str) -> Locale:
    try:
        return Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LANGUAGE)


@dataclass(frozen=True, slots=True)
class Texts:
    """Everything a page needs to speak one language: gettext and locale-aware formats."""

    lang: str
    region: str | None = None
    """A regional variant for formats (``en-GB``: 24-hour clock, day before month)."""

    @property
    def locale(self) -> Locale:
        return _locale(self.region or self.lang)

    def gettext(self, message: str, **values: object) -> str:
        text = translations(self.lang).gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = translations(self.lang).ngettext(singular, plural, n)
        return text.format(n=n, **values)

    def money(self, amount: Decimal, currency: str, *, exact: bool = False) -> str:
        """``amount`` in the locale's format; ``exact`` keeps every digit of a tariff price (0.2975)."""
        return format_currency(amount, currency, locale=self.locale, decimal_quantization=not exact)

    def number(self, value: float | Decimal, digits: int) -> str:
        """``value`` with exactly ``digits`` decimals, in the locale's symbols (``2,50`` in Swedish)."""
        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        return format_decimal(Decimal(str(value)), format=pattern, locale=self.locale)

    def when(self, at: datetime, timezone: str) -> str:
        """A site-local date and time, e.g. ``2 Dec 2026, 16:05 CET``."""
        local = at.astimezone(ZoneInfo(timezone))
        return format_datetime(local, "medium", locale=self.locale) + " " + (local.tzname() or "")

    def clock_time(self, at: datetime, timezone: str) -> str:
        return format_time(at.astimezone(ZoneInfo(timezone)), "short", locale=self.locale)
