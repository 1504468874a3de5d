"""Structured logs: one JSON object per line, with the request id the audit record carries.

The request middleware logs one line per request on the ``tearline.access`` logger with the
fields in :data:`ACCESS_FIELDS` passed as ``extra``; :class:`JsonFormatter` writes them out.
Nothing a client sent in a header or body is logged, except the sanitised request id, so
tokens and objects never reach the logs.

``tearline serve`` hands :func:`logging_config` to uvicorn; the app itself never configures
logging (tests and embedding programs keep theirs).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

ACCESS_LOGGER = "tearline.access"
ACCESS_FIELDS = (
    "request_id",
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "subject",
    "nation",
    "client",
    "objects_served",
)
# LogRecord attributes that are not ``extra`` fields.
# uvicorn's ``color_message`` duplicates the message with terminal escapes.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, logger, message, then any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        document = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in document:
                document[key] = value
        if record.exc_info:
            # Server-side only: clients never see this (app/http/errors.py answers a bare 500).
            document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


class TextFormatter(logging.Formatter):
    """Plain lines for a terminal: the message, then the extra fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The record as one plain line, its extra fields appended as key=value."""
        line = super().format(record)
        extras = [
            f"{k}={_plain(v)}"
            for k, v in vars(record).items()
            if k not in _STANDARD and not k.startswith("_") and v is not None
        ]
        return f"{line} {' '.join(extras)}" if extras else line


def _plain(value: object) -> str:
    """A value for a key=value pair; quoted JSON when it holds spaces or control characters, so a
    client-chosen path (``%0A`` decodes to a newline) cannot forge a log line."""
    text = str(value)
    if any(ch.isspace() or ord(ch) < 0x20 or ch == '"' for ch in text):
        return orjson.dumps(text).decode()
    return text


def logging_config(log_level: str = "INFO", log_format: str = "json") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for the server process (passed to uvicorn as ``log_config``).

    uvicorn's own access log is silenced: the ``tearline.access`` line replaces it and carries
    the route template, request id and principal.
    """
    formatter = "json" if log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"()": TextFormatter},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": formatter, "stream": "ext://sys.stderr"},
        },
        "root": {"handlers": ["stderr"], "level": log_level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": log_level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": log_level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # pycasbin logs every role check at INFO; the access line already has the outcome.
            "casbin": {"level": "WARNING"},
        },
    }
