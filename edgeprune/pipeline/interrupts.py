"""Ctrl-C during a build: deferred while the manifest records it, and never lost inside swallowed callbacks."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ignore Ctrl-C while the manifest records an interruption (a second Ctrl-C must not lose it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class InterruptGuard:
    """Make Ctrl-C stop a build even when Python delivers it where exceptions are swallowed.

    A KeyboardInterrupt raised inside a garbage-collector or weakref callback or a ``__del__`` (which converters
    such as JAX trigger all the time) is printed as "Exception ignored" and lost. So the handler raises it and
    re-sends SIGINT every 0.5 s until the runner calls ``seen()``; the runner also checks ``pending`` after
    each stage. Installed only in the main thread and only over Python's default handler.
    """

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> InterruptGuard:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.pending = True
        timer = threading.Timer(0.5, self._redeliver)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    def _redeliver(self) -> None:
        with self._lock:
            if self.pending:
                os.kill(os.getpid(), signal.SIGINT)

    def seen(self) -> None:
        with self._lock:
            self.pending = False

    def __exit__(self, *exc: Any) -> None:
        self.seen()
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
