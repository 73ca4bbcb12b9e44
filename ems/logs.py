"""Logging for ``ems serve`` and ``ems demo``: text (default) or JSON lines (``EMS_LOG_FORMAT=json``).

A JSON line carries ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the record's
structured extras (e.g. ``security_event``, ``source``, ``station_id`` of a security event)
and ``exception`` (the traceback as text) when there is one; one object per line, so a log
shipper needs no multi-line parsing.

Library noise kept out at INFO: ``websockets`` logs every connection opened and closed and
every refused handshake (a scanner makes thousands); ``ocpp`` logs every frame. Both are
raised to WARNING unless ``EMS_LOG_LEVEL=DEBUG``. The OCPP server logs what matters itself
(refusals as security events, takeovers, failures).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
NOISY = ("websockets", "ocpp", "uvicorn.error", "fontTools", "fpdf")
"""Loggers raised to WARNING unless the level is DEBUG (fontTools: the sticker PDF's font subsetting)."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Root handler on stderr in ``log_format`` (``text`` or ``json``) at ``level``; replaces earlier handlers."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = max(logging.WARNING, logging.getLevelName(level)) if level != "DEBUG" else logging.DEBUG
    for name in NOISY:
        logging.getLogger(name).setLevel(quiet)
