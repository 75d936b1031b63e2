"""Tiny HTML helpers: every piece of text goes through ``esc``; no external resource is ever referenced."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def pct(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f}%"


def pp(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{100 * v:+.{digits}f} pp"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "–"
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MB"


def count(n: int | None) -> str:
    """A MAC or parameter count with a readable unit (k, M, G)."""
    if n is None:
        return "–"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f} ms" if v < 1 else f"{v:.2f} ms"


def section(sid: str, title: str, body: str, css: str = "") -> str:
    return f'<section id="{esc(sid)}" class="{esc(css)}"><h2>{esc(title)}</h2>{body}</section>'


def not_run(sid: str, title: str, why: str) -> str:
    return section(sid, title, f'<p class="notrun">not run: {esc(why)}</p>', "empty")


def img(uri: str, alt: str) -> str:
    if not uri.startswith("data:image/png;base64,"):  # only inline images, never a fetched one
        raise ValueError("report images must be inline PNG data URIs")
    return f'<img src="{uri}" alt="{esc(alt)}" loading="eager">'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = (),
          raw: Iterable[int] = ()) -> str:
    """A scrollable table; columns in ``numeric`` are right-aligned, cells in ``raw`` columns are trusted HTML."""
    num, trusted = set(numeric), set(raw)
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell if i in trusted else esc(cell)
            cells.append(f'<td class="num">{text}</td>' if i in num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def verdict(passed: bool | None) -> str:
    if passed is None:
        return '<span class="muted">not verified</span>'
    return '<span class="pass">PASS</span>' if passed else '<span class="fail">REJECTED</span>'
