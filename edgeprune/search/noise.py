"""Keep third-party chatter (torch pytree FutureWarnings, torchao load failures, absl/XNNPACK lines) off the
console: Python warnings are silenced and file descriptor 2 goes to a log file in the run directory."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def silence_python_noise() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("torchao", "absl", "optuna", "tensorflow", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def stderr_to(log: Path) -> Iterator[None]:
    """Send everything written to stderr (Python and native code, this process and its children) to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "ab") as f:
        os.dup2(f.fileno(), 2)
    try:
        with warnings.catch_warnings():
            silence_python_noise()
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
