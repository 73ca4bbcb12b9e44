"""QR codes and sticker sheets for the chargers (segno for the codes, fpdf2 for the PDF).

Every EVSE has one stable URL, ``{public_url}/c/{station_id}/{evse_id}``: the sticker on the
charger encodes it, and the driver page lives there.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import segno
from fpdf import FPDF

from ems.domain.site import Site
from ems.domain.tariff import Tariff
from ems.errors import InvalidInput
from ems.ports.stores import StationStore
from ems.web.i18n import Texts
from ems.web.views import price_lines


def evse_url(public_url: str, station_id: str, evse_id: int) -> str:
    return f"{public_url.rstrip('/')}/c/{quote(station_id, safe='')}/{evse_id}"


def qr_svg(url: str, *, scale: int = 8) -> str:
    """The QR code of ``url`` as a standalone SVG (error correction M, quiet zone 4 modules)."""
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="svg", scale=scale, border=4, xmldecl=False)
    return buffer.getvalue().decode("utf-8")


@dataclass(frozen=True, slots=True)
class Sticker:
    station_id: str
    evse_id: int
    url: str
    price: str
    """The tariff, one component per line (``views.price_lines`` joined by newlines)."""
    title: str = ""


_COLS, _ROWS = 2, 3
_W_MM, _H_MM = 90.0, 88.0
_MARGIN_X_MM, _MARGIN_Y_MM = 12.0, 12.0


_UNICODE_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
)
"""A Unicode font when the system has one (prices in any currency symbol); else the PDF core font."""


def _latin1(text: str) -> str:
    """fpdf2's core fonts speak Latin-1: the euro sign becomes "EUR ", anything else '?', never an error."""
    return text.replace("€", "EUR ").encode("latin-1", "replace").decode("latin-1")


def _font(pdf: FPDF) -> tuple[str, bool]:
    """The font family to use and whether it is Unicode."""
    for path in _UNICODE_FONTS:
        if path.is_file():
            pdf.add_font("Sticker", "", str(path))
            bold = path.with_name(path.name.replace("Sans.ttf", "Sans-Bold.ttf").replace("-Regular", "-Bold"))
            pdf.add_font("Sticker", "B", str(bold if bold.is_file() else path))
            return "Sticker", True
    return "Helvetica", False


def sticker_sheet(stickers: Sequence[Sticker], out: Path, *, unicode_font: bool = True) -> Path:
    """A4 pages of 2 x 3 stickers (90 x 88 mm, cut lines drawn): QR, charger and connector, URL, price."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(False)
    pdf.set_title("ems charger stickers")
    family, unicode = _font(pdf) if unicode_font else ("Helvetica", False)

    def text(value: str) -> str:
        return value if unicode else _latin1(value)

    for index, sticker in enumerate(stickers):
        slot = index % (_COLS * _ROWS)
        if slot == 0:
            pdf.add_page()
        x = _MARGIN_X_MM + (slot % _COLS) * _W_MM
        y = _MARGIN_Y_MM + (slot // _COLS) * _H_MM
        pdf.set_draw_color(180, 180, 180)
        pdf.set_line_width(0.2)
        pdf.rect(x, y, _W_MM, _H_MM)
        png = io.BytesIO()
        segno.make(sticker.url, error="m", micro=False).save(png, kind="png", scale=10, border=2)
        png.seek(0)
        pdf.image(png, x=x + 4, y=y + 4, w=44, h=44, link=sticker.url)  # also a link, for the PDF on a screen
        pdf.set_xy(x + 50, y + 6)
        title = text(sticker.title or sticker.station_id)
        size = 14.0
        pdf.set_font(family, "B", size)
        while size > 8 and pdf.get_string_width(title) > _W_MM - 56:  # one line while it can be read
            size -= 0.5
            pdf.set_font(family, "B", size)
        pdf.multi_cell(_W_MM - 54, 6, title, align="L")
        pdf.set_x(x + 50)
        pdf.set_font(family, "", 11)
        pdf.multi_cell(_W_MM - 54, 6, text(f"Connector {sticker.evse_id}"), align="L")
        pdf.set_xy(x + 50, pdf.get_y() + 3)
        pdf.set_font(family, "B", 11)
        pdf.multi_cell(_W_MM - 54, 5.5, "Scan to pay and charge", align="L")
        pdf.set_xy(x + 4, y + 51)
        pdf.set_font(family, "B", 9)
        pdf.multi_cell(_W_MM - 8, 4.5, text(sticker.url), align="L")
        pdf.set_xy(x + 4, pdf.get_y() + 1.5)
        pdf.set_font(family, "", 8.5)
        pdf.multi_cell(_W_MM - 8, 4.2, text(sticker.price), align="L")
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


async def site_stickers(
    sites: Sequence[Site],
    site_id: str,
    stations: StationStore,
    tariff_for: Callable[[str], Awaitable[Tariff]],
    public_url: str,
) -> list[Sticker]:
    """One sticker per EVSE of the site: the site file's stations and EVSEs, then stations registered
    for the site in the database (their EVSEs from their status history; at least EVSE 1)."""
    evses: dict[str, set[int]] = {}
    site = next((s for s in sites if s.id == site_id), None)
    if site is not None:
        for spec in site.stations:
            evses.setdefault(spec.id, set()).update(e.evse_id for e in spec.evses)
    for station in await stations.all():
        if station.site_id == site_id or (station.site_id is None and site is not None and len(sites) == 1):
            known = {r.evse_id for r in await stations.status_history(station.id, limit=200)}
            evses.setdefault(station.id, set()).update({e for e in known if e > 0} or {1})
    if not evses:
        raise InvalidInput(f"no stations for site {site_id!r}: give a site file (--site-file) or register stations")
    texts, out = Texts("en"), []
    for station_id in sorted(evses):
        price = "\n".join(price_lines(texts, await tariff_for(station_id)))
        for evse_id in sorted(evses[station_id]):
            out.append(Sticker(station_id, evse_id, evse_url(public_url, station_id, evse_id), price))
    return out
