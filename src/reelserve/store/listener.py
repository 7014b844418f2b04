"""PgListener: PostgreSQL NOTIFYs from every process, republished as local wake-ups."""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy.engine import make_url

from reelserve.core.wakeups import Wakeups
from reelserve.store.sql_store import PG_CHANNEL

log = logging.getLogger(__name__)


def _libpq_url(database_url: str) -> str:
    """psycopg wants a plain libpq URL, without SQLAlchemy's ``+driver``."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgListener:
    def __init__(self, database_url: str, wakeups: Wakeups, *, retry_s: float = 1.0) -> None:
        self.url = _libpq_url(database_url)
        self.wakeups = wakeups
        self.retry_s = retry_s
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listener", daemon=True)

    def start(self) -> PgListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {PG_CHANNEL}")
                    self.listening.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5, stop_after=64):
                            self.wakeups.publish(note.payload)
            except psycopg.Error:
                # Waiters keep polling meanwhile; wake-ups resume when we reconnect.
                self.listening.clear()
                log.warning("LISTEN connection lost; reconnecting", exc_info=True)
                self._stop.wait(self.retry_s)
