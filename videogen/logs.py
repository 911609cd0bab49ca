"""Logging set-up: one line per event, plain text by default, JSON with a flag.

Log records never carry keys: keys live only in ``SecretStr`` settings and request headers,
and httpx's request logging is kept at WARNING so no header or URL query is ever written.
"""

from __future__ import annotations

import json
import logging
import os

_TEXT = "%(asctime)s %(levelname)-7s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def setup_logging(level: str | None = None, *, as_json: bool | None = None) -> None:
    """Configure the root logger once (``VIDEOGEN_LOG_LEVEL``, ``VIDEOGEN_LOG_JSON``)."""
    level = level or os.environ.get("VIDEOGEN_LOG_LEVEL", "INFO")
    if as_json is None:
        as_json = os.environ.get("VIDEOGEN_LOG_JSON", "") not in ("", "0", "false")
    logger = logging.getLogger("videogen")
    logger.setLevel(level.upper())
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(_TEXT))
        logger.addHandler(handler)
        logger.propagate = False
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
