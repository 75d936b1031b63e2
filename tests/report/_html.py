"""Parse report.html into what the tests look at: sections, images, links."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Section:
    id: str
    css: str
    text: str = ""
    images: list[bytes] = field(default_factory=list)


class ReportParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, Section] = {}
        self.current: Section | None = None
        self.urls: list[str] = []  # every src/href/action/... attribute value
        self.tags: list[str] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        for key in ("src", "href", "action", "srcset", "poster", "data", "formaction"):
            if key in a:
                self.urls.append(a[key])
        if tag == "meta" and "http-equiv" in a:
            self.meta[a["http-equiv"].lower()] = a.get("content", "")
        if tag == "section":
            self.current = Section(a.get("id", ""), a.get("class", ""))
            self.sections[self.current.id] = self.current
        elif tag == "img" and self.current is not None:
            src = a.get("src", "")
            head, _, payload = src.partition(",")
            assert head == "data:image/png;base64", src[:60]
            self.current.images.append(base64.b64decode(payload))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.current.text += data


def parse(html: str) -> ReportParser:
    p = ReportParser()
    p.feed(html)
    return p
