"""QR codes (the API's qr.svg) and the sticker sheet (``ems qr``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import segno

from ems.web.qr import Sticker, evse_url, qr_svg, sticker_sheet
from tests.integration.web.conftest import WebEnv

ROOT = Path(__file__).parents[3]


async def test_qr_svg_encodes_the_evse_url(web: WebEnv) -> None:
    r = await web.client.get("/api/v1/stations/CP-1/evses/2/qr.svg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    assert r.text.startswith("<svg") and r.text == qr_svg("https://charge.example.com/c/CP-1/2")
    # The code is the one for the stable URL: same symbol size as segno's own encoding of it
    size = segno.make("https://charge.example.com/c/CP-1/2", error="m", micro=False).symbol_size(scale=8, border=4)
    assert f'width="{size[0]}"' in r.text
    assert (await web.client.get("/api/v1/stations/NOPE/evses/1/qr.svg")).status_code == 404
    assert (await web.client.get("/api/v1/stations/CP-1/evses/0/qr.svg")).status_code == 422


def test_evse_url_escapes_the_station_id() -> None:
    assert evse_url("https://x.example/", "CP 1/a", 3) == "https://x.example/c/CP%201%2Fa/3"


def _ems(args: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMS_")}
    env.update({"EMS_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT), **extra})
    return subprocess.run(
        [sys.executable, "-m", "ems", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def _pdf_links(path: Path) -> list[str]:
    """The URIs of the sheet's link annotations (one per sticker, on its QR code)."""
    return [m.decode() for m in re.findall(rb"/URI \((.*?)\)", path.read_bytes())]


def _pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type /Page\b", path.read_bytes()))


def test_ems_qr_prints_a_sticker_per_evse(tmp_path: Path) -> None:
    r = _ems(["station", "add", "CP7"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "stickers.pdf"
    r = _ems(["qr", "--site", "default", "--out", str(out)], tmp_path, EMS_PUBLIC_URL="https://ev.example.org")
    assert r.returncode == 0, r.stderr
    assert "1 sticker(s) for site default" in r.stdout
    assert out.read_bytes().startswith(b"%PDF") and _pdf_pages(out) == 1
    assert _pdf_links(out) == ["https://ev.example.org/c/CP7/1"]


def test_ems_qr_for_an_unknown_site_is_one_clear_line(tmp_path: Path) -> None:
    r = _ems(["qr", "--site", "nowhere", "--out", str(tmp_path / "x.pdf")], tmp_path)
    assert r.returncode == 2 and "no stations for site 'nowhere'" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_demo_prints_the_driver_url_and_a_sticker_sheet(tmp_path: Path) -> None:
    r = _ems(["demo", "--duration", "3", "--api-port", "0", "--ocpp-port", "0"], tmp_path)
    assert r.returncode == 0, r.stderr
    url = re.search(
        r"ems demo: driver page (http://127\.0\.0\.1:\d+/c/DEMO-16-001/1) \(phone (.+), PIN (\d+)\)", r.stdout
    )
    assert url, r.stdout
    sheet = re.search(r"ems demo: QR sticker sheet (\S+\.pdf)", r.stdout)
    assert sheet, r.stdout
    pdf = Path(sheet.group(1))
    assert pdf.is_absolute() and pdf.read_bytes().startswith(b"%PDF")
    links = _pdf_links(pdf)
    assert len(links) == 8 and _pdf_pages(pdf) == 2  # 4 stations x 2 EVSEs, six stickers a page
    assert links[0] == url.group(1) and links[-1].endswith("/c/DEMO-201-002/2")


def test_sticker_text_falls_back_to_latin1_without_a_unicode_font(tmp_path: Path) -> None:
    stickers = [Sticker("CP-Ö", 1, "https://x.example/c/CP-%C3%96/1", "€0.30 per kWh\n₹5 per session")]
    out = sticker_sheet(stickers, tmp_path / "s.pdf", unicode_font=False)
    data = out.read_bytes()
    assert data.startswith(b"%PDF") and _pdf_links(out) == ["https://x.example/c/CP-%C3%96/1"]
