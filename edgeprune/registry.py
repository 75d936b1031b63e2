"""A small name -> entry registry shared by models, criteria, targets and devices."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from edgeprune.errors import EdgepruneError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to entries; unknown names get a "did you mean" suggestion."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``."""

        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise EdgepruneError(f"unknown {self.kind} '{name}'", self.hint(name)) from None

    def hint(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=1, cutoff=0.5)
        known = ", ".join(sorted(self._entries))
        return f"did you mean '{close[0]}'? Known: {known}" if close else f"known {self.kind}s: {known}"

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
