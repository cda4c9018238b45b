"""``visitplan serve``: the roster's calendars over HTTP (Starlette on uvicorn).

:func:`create_app` makes the ASGI application (routes added by module, see
:mod:`visitplan.server.app`); :func:`serve` runs it with uvicorn, bound to 127.0.0.1 by
default, with uvicorn's access log off (it would print each path, and a feed's path is its
secret) and every log line passed through a filter that hides feed tokens anyway.
Deploy it behind a TLS reverse proxy: docs/calendars.md.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visitplan.server.app import create_app

if TYPE_CHECKING:
    from visitplan.model import Protocol

__all__ = ["LOGGING", "HideFeedTokens", "create_app", "serve"]

_FEED_PATH = re.compile(r"/feeds/[^\s\"'?#]+")


class HideFeedTokens(logging.Filter):
    """Replaces every ``/feeds/<token>.ics`` in a log record by ``/feeds/<hidden>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "/feeds/" in text:
            record.msg = _FEED_PATH.sub("/feeds/<hidden>", text)
            record.args = ()
        return True


#: uvicorn's logging, its access log silenced and a token filter on every line written.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"hide_tokens": {"()": HideFeedTokens}},
    "formatters": {
        "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"}
    },
    "handlers": {
        "default": {
            "formatter": "default",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "filters": ["hide_tokens"],
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        "visitplan.server": {"handlers": ["default"], "level": "INFO", "propagate": False},
    },
}


def serve(
    db: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8421,
    protocol: Protocol | None = None,
    wait: float = 10.0,
    lang: str | None = None,
) -> None:
    """Serve the roster at ``db`` until interrupted (``lang``: the language of the pages and
    feeds; default: the site's)."""
    import uvicorn

    app = create_app(db, protocol=protocol, wait=wait, lang=lang)
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        log_config=LOGGING,
        server_header=False,
    )
