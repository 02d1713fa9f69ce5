"""Health follows the database: a thread pings it and flips the services that need it.

Every service this server offers reads or writes the database, so while it
cannot be reached, health reports ``NOT_SERVING`` for each of them and for
``""``; when it answers again, ``SERVING``. Calls made meanwhile fail on their
own with ``UNAVAILABLE`` (the store raises ``Unavailable``); health only tells
load balancers and orchestrators to look elsewhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("proxyvote.health")

PING_INTERVAL_SECONDS = 1.0
# A ping with no answer by then counts as unavailable (a frozen server accepts and never answers).
PING_TIMEOUT_SECONDS = 2.0


class DatabaseHealthMonitor:
    """Calls ``ping()`` every ``interval`` seconds and ``on_change(available)`` when the answer changes.

    It starts out assuming the database is available (the server has just read
    it to start), so it reports only transitions and leaves health alone
    otherwise. Each ping runs in a thread of its own and counts as False when it
    has not answered within ``timeout``; no new ping starts until it has.
    """

    def __init__(
        self,
        ping: Callable[[], bool],
        on_change: Callable[[bool], None],
        interval: float = PING_INTERVAL_SECONDS,
        timeout: float = PING_TIMEOUT_SECONDS,
    ):
        self._ping = ping
        self._on_change = on_change
        self._interval = interval
        self._timeout = timeout
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: threading.Thread | None = None  # a ping that has not answered yet
        self.available = True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="database-health", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops pinging; once it returns, health is no longer changed by this monitor."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def check(self) -> bool:
        """One ping, and health changed if the answer differs from the last one."""
        available = self._bounded_ping()
        if available != self.available and not self._stopping.is_set():
            self.available = available
            if available:
                log.info("database reachable again: health SERVING")
            else:
                log.warning("database unreachable: health NOT_SERVING until it answers")
            self._on_change(available)
        return available

    def _bounded_ping(self) -> bool:
        if self._pending is not None and self._pending.is_alive():
            return False  # the last ping is still waiting for the database
        answer: list[bool] = []

        def ping() -> None:
            try:
                answer.append(bool(self._ping()))
            except Exception:  # a ping must not kill the monitor
                log.exception("database ping failed unexpectedly")

        self._pending = threading.Thread(target=ping, name="database-ping", daemon=True)
        self._pending.start()
        self._pending.join(self._timeout)
        return bool(answer) and answer[0]

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self.check()
