"""Log output: one JSON object per line, or plain text; both carry the bound ids.

JSON lines have ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, and
``request_id`` / ``generation_id`` when known, plus ``exception`` with the traceback when
one is logged: what log shippers (Loki, Elasticsearch, CloudWatch) index without parsing.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from reelserve.core import log_context

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ContextFilter(logging.Filter):
    """Copies the bound ids onto every record (``None`` when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = log_context.request_id()
        record.generation_id = log_context.generation_id()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "generation_id"):
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with ``request_id=... generation_id=...`` appended when known."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = [
            f"{name}={value}"
            for name in ("request_id", "generation_id")
            if (value := getattr(record, name, None)) is not None
        ]
        if not ids:
            return text
        first, newline, rest = text.partition("\n")  # keep tracebacks below the line
        return f"{first} [{' '.join(ids)}]{newline}{rest}"


def handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    if log_format not in FORMATS:
        raise ValueError(f"log_format: must be one of {', '.join(FORMATS)}, not {log_format!r}")
    out = logging.StreamHandler(stream or sys.stderr)
    out.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    out.addFilter(ContextFilter())
    return out


def configure(level: str, log_format: str, stream: TextIO | None = None) -> None:
    """The root logger writes ``log_format`` lines to ``stream`` (stderr by default)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(log_format, stream))
    root.setLevel(level.upper())
