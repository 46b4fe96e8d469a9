"""structlog set-up, done once by the command that starts: JSON lines for services, readable lines for people."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure(json: bool = False, level: str = "info", stream: TextIO | None = None) -> None:
    """`json`: one JSON object per line (journald keeps them whole). Callable again to change the level."""
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
