"""Every core: N server processes on one port (SO_REUSEPORT), one supervisor.

Python serves one core per process (the GIL), so ``proxyvote serve --workers N``
starts N processes, each a whole server with its own database connections and
decision writer, all bound to the same port; the kernel spreads connections
among them. They share the audit chain through the database, whose unique
constraints settle concurrent appends (the writer retries from the head).

The supervisor stores the bundled policies and shared evidence once, before
the workers start (so they do not race to seed them), then waits. SIGTERM or
SIGINT is passed on to every worker, which drains its calls; a worker that dies
stops the others, and the supervisor exits with its status.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading

from proxyvote.app.wiring import build_app
from proxyvote.errors import ConfigurationError
from proxyvote.settings import Settings

log = logging.getLogger("proxyvote.workers")


def worker_count(settings: Settings) -> int:
    return settings.workers if settings.workers > 0 else (os.cpu_count() or 1)


def _die_with_parent() -> None:
    """In the child, before it runs: the kernel sends it SIGTERM if the supervisor dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: a killed supervisor leaves its workers to be stopped by hand


def _metrics_flag(metrics_addr: str, n: int) -> list[str]:
    """Worker n serves its metrics on the configured port plus n (each process counts its own)."""
    if not metrics_addr:
        return []
    host, _, port = metrics_addr.rpartition(":")
    return ["--metrics-addr", f"{host}:{int(port) + n}" if port.isdigit() and int(port) else metrics_addr]


def supervise(settings: Settings, count: int) -> int:
    """Runs ``count`` workers until a signal or until one of them exits; returns the exit status."""
    if settings.addr.rsplit(":", 1)[-1] in ("", "0"):
        raise ConfigurationError(f"--workers {count} needs a fixed port, not {settings.addr!r}")
    build_app(settings).close()  # seeds the store once, and fails here on a bad database
    command = [
        sys.executable,
        "-m",
        "proxyvote.cli",
        "--policy-dir",
        str(settings.policy_dir),
        "serve",
        "--addr",
        settings.addr,
        "--database-url",
        settings.database_url,
        "--workers",
        "1",
        "--reuse-port",
    ]
    workers = [
        subprocess.Popen(command + _metrics_flag(settings.metrics_addr, n), preexec_fn=_die_with_parent)
        for n in range(count)
    ]
    log.info("%d workers on %s: pids %s", count, settings.addr, " ".join(str(w.pid) for w in workers))
    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 0
    while True:
        for worker in workers:
            code = worker.poll()
            if code is not None and not stopping.is_set():
                log.error("worker %d exited with %d: stopping the others", worker.pid, code)
                status = code or 1
                on_signal(signal.SIGTERM, None)
        if all(w.poll() is not None for w in workers):
            break
        stopping.wait(0.2)
    deadline = settings.grace + 5
    for worker in workers:
        try:
            worker.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            worker.kill()
    log.info("all workers stopped")
    return status
