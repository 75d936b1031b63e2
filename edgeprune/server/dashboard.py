"""``GET /dashboard``: one server-rendered HTML page comparing builds across devices (inline SVG plots).

Access: an admin key in the ``Authorization`` header (Bearer, or HTTP Basic with the key as password so
a browser can prompt for it). Keys in the URL are never accepted. With ``dashboard_public`` the page is
served read-only without a key. A strict Content-Security-Policy forbids every external request.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from edgeprune import __version__
from edgeprune.server.deps import StateDep, authorize
from edgeprune.server.plots import grouped_bars, scatter
from edgeprune.server.summary import BuildRow, Summary, summarize

router = APIRouter(tags=["dashboard"])
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; frame-ancestors 'none'"
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #ccc;padding:4px 8px;font-size:13px}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px}.empty{color:#777}.plots{display:flex;flex-wrap:wrap;gap:24px}
"""


def _num(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def _size(n: int) -> str:
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _builds_table(s: Summary) -> str:
    if not s.builds:
        return '<p class="empty">No bundles published yet: <code>edgeprune publish RUN_DIR --server URL</code>.</p>'
    head = "".join(f"<th>{escape(d)}<br>p50 ms / memory MB (n)</th>" for d in s.devices)
    rows = []
    for b in s.builds:
        cells = []
        for d in s.devices:
            st = b.devices.get(d)
            if st is None:
                cells.append("<td></td>")
                continue
            p50 = "emulated" if st.emulated_only else _num(st.p50_ms)
            cells.append(f'<td class="num">{p50} / {_num(st.memory_mb, 1)} ({st.n})</td>')
        rows.append(
            f"<tr><td>{escape(b.label)}</td><td>{escape(b.fmt)}</td><td><code>{b.bundle_sha256[:12]}</code></td>"
            f'<td>{escape(", ".join(b.channels))}</td><td class="num">{_size(b.size_bytes)}</td>'
            f'<td class="num">{_num(b.balanced_accuracy, 3)}</td>{"".join(cells)}</tr>'
        )
    return ("<table><tr><th>build</th><th>format</th><th>bundle</th><th>channels</th><th>model size</th>"
            f"<th>balanced acc.</th>{head}</tr>{''.join(rows)}</table>")


def _plots(s: Summary) -> str:
    labels = [b.label for b in s.builds]

    def per_device(attr: str) -> dict[str, list[float | None]]:
        out: dict[str, list[float | None]] = {}
        for d in s.devices:
            out[d] = [getattr(b.devices[d], attr) if d in b.devices else None for b in s.builds]
        return out

    biggest = max((b.size_bytes for b in s.builds), default=0)
    unit, scale = ("MB", 1 << 20) if biggest >= 1 << 20 else ("KB", 1 << 10)
    points = []
    for b in s.builds:
        p50s = [st.p50_ms for st in b.devices.values() if st.p50_ms is not None]
        if p50s and b.balanced_accuracy is not None:
            points.append((b.label, min(p50s), b.balanced_accuracy))
    charts = [
        grouped_bars("p50 latency per build and device", labels, per_device("p50_ms"), "ms"),
        grouped_bars("memory per build and device", labels, per_device("memory_mb"), "MB"),
        grouped_bars("model size", labels, {"artifact": [b.size_bytes / scale for b in s.builds]}, unit),
        grouped_bars("balanced accuracy", labels, {"model.json metrics": [b.balanced_accuracy for b in s.builds]},
                     ""),
        scatter("balanced accuracy vs fastest p50", points, "p50 latency ms", "balanced accuracy"),
    ]
    return '<div class="plots">' + "".join(f"<div>{c}</div>" for c in charts) + "</div>"


def _recent_table(s: Summary) -> str:
    if not s.recent:
        return '<p class="empty">No measurements posted yet.</p>'
    rows = []
    for m in s.recent:
        lat = m.get("latency") or {}
        dev = m.get("device") or {}
        rows.append(
            f"<tr><td>{escape(str(m.get('created_at', '')))}</td><td>{escape(str(m.get('artifact_name', '')))}</td>"
            f"<td><code>{escape(str(m.get('artifact_sha256', ''))[:12])}</code></td>"
            f"<td>{escape(str(dev.get('kind', '')))}:{escape(str(dev.get('model') or dev.get('id', '')))}</td>"
            f"<td>{escape(str(m.get('runtime', '')))}</td><td class='num'>{escape(str(m.get('threads', '')))}</td>"
            + (f"<td class='num'>{_num(lat.get('p50_ms'))}</td><td class='num'>{_num(lat.get('p90_ms'))}</td></tr>"
               if m.get("timing_meaningful", True) else "<td>emulated</td><td>emulated</td></tr>")
        )
    return ("<table><tr><th>created</th><th>artifact</th><th>sha256</th><th>device</th><th>runtime</th>"
            f"<th>threads</th><th>p50 ms</th><th>p90 ms</th></tr>{''.join(rows)}</table>")


def _deliveries_table(s: Summary) -> str:
    if not s.deliveries:
        return '<p class="empty">No device has asked for a model yet.</p>'
    rows = "".join(f"<tr><td>{escape(a)}</td><td>{escape(c)}</td><td>{escape(abi or '(not sent)')}</td>"
                   f"<td class='num'>{n}</td></tr>" for a, c, abi, n in s.deliveries)
    return f"<table><tr><th>app</th><th>channel</th><th>ABI</th><th>requests</th></tr>{rows}</table>"


def render(s: Summary) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>edgeprune dashboard</title>"
        f"<style>{STYLE}</style></head><body><h1>edgeprune builds</h1>"
        f"<p>{len(s.builds)} build(s), {len(s.devices)} device(s). Latency is the median of the posted p50 values "
        f"per device; emulated runs are shown as 'emulated', never as latency. Server {escape(__version__)}.</p>"
        f"<h2>Builds across devices</h2>{_builds_table(s)}<h2>Plots</h2>{_plots(s)}"
        f"<h2>Recent measurements</h2>{_recent_table(s)}<h2>Model requests by ABI</h2>{_deliveries_table(s)}"
        "</body></html>"
    )


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=True)
async def dashboard(request: Request, state: StateDep) -> HTMLResponse:
    """The comparison page (admin key via header unless ``dashboard_public``)."""
    if not state.settings.dashboard_public:
        await authorize(request, state, "admin", allow_basic=True)
    await run_in_threadpool(state.deliveries.flush)
    html = render(await run_in_threadpool(summarize, state.db))
    return HTMLResponse(html, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})


__all__ = ["BuildRow", "render", "router"]
