"""One self-contained, offline ``report.html`` for one run or several (combined Pareto plot).

No scripts, no fonts, no stylesheets or images from anywhere: CSS is inline, plots are inline PNG data URIs,
and a Content-Security-Policy forbids the browser from fetching anything at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgeprune import __version__
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import write_text_atomic
from edgeprune.report import plots, provenance, sections
from edgeprune.report.collect import RunView, host_latency, load_run, unique_labels
from edgeprune.report.markup import count, esc, human_bytes, img, ms, not_run, pct, section, verdict

NOT_CHECKED = '<span class="muted">not checked (gate disabled)</span>'
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
CSS = """
:root{--ok:#1a7f37;--bad:#c62828;--muted:#666;--line:#dcdcdc}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:12px}
h1{font-size:1.45rem;margin:.3em 0}
h2{font-size:1.15rem;margin:0 0 .5em;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:1rem;margin:.8em 0 .3em}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px;margin:12px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(235px,1fr));gap:10px}
.card{border:1px solid var(--line);border-left:5px solid var(--ok);border-radius:8px;padding:8px 10px}
.card.rejected{border-left-color:var(--bad);background:#fff5f5}.card.unverified{border-left-color:#999}
.card h3{margin:0;font-size:.95rem;word-break:break-all}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 10px;margin:6px 0;font-size:.9rem}
dt{color:var(--muted)}dd{margin:0}
img{max-width:100%;height:auto;display:block;margin:8px auto}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-size:.85rem;width:100%}
th,td{padding:4px 6px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f1f3f5;white-space:nowrap}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.pass{color:var(--ok);font-weight:600}.fail{color:var(--bad);font-weight:600}.muted{color:var(--muted)}
.notrun{color:var(--muted);font-style:italic}
.banner{padding:10px 12px;border-radius:8px;font-weight:600;margin:10px 0}
.banner.ok{background:#e8f5ec;color:var(--ok)}.banner.bad{background:#fdecea;color:var(--bad)}
.banner.none{background:#eee;color:#444}
ul.reasons{color:var(--bad);margin:4px 0;padding-left:18px;font-size:.85rem}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
pre{white-space:pre-wrap;background:#f4f4f4;padding:6px;border-radius:4px}
nav{font-size:.85rem;line-height:1.9}nav a{margin-right:10px;white-space:nowrap}
.run-title{margin-top:24px;font-size:1.25rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:8px}.grid img{margin:0}
ul.notes{font-size:.85rem;word-break:break-word}
@media (max-width:600px){body{font-size:14px}main{padding:6px}section{padding:8px}th,td{padding:3px 4px}}
"""

PER_RUN: list[tuple[str, str, Callable[[RunView, str], str]]] = [
    ("data", "Data and model", provenance.data_overview),
    ("search", "Search", sections.search),
    ("channels", "Channels", sections.channels),
    ("sensitivity", "Sensitivity", sections.sensitivity),
    ("confusion", "Confusion", sections.confusion),
    ("drift", "Drift", sections.drift),
    ("curve", "Curve", sections.curve),
    ("devices", "Devices", sections.devices),
    ("bakeoff", "Bake-off", sections.bakeoff),
    ("provenance", "Commands & versions", provenance.provenance),
    ("stages", "Stages", provenance.stages),
]


def _card(run: RunView, row: dict[str, Any], multi: bool) -> str:
    passed = row.get("gate_passed")
    css = {True: "card", False: "card rejected", None: "card unverified"}[passed]
    checked = row.get("gate_status") != "not-checked"
    lat = host_latency(row)
    delta = (row.get("vs_dense_float") or {}).get("balanced_accuracy")
    change = "" if not delta else (f" <span class='muted'>({100 * delta['delta']:+.1f} pp, "
                                   f"CI {100 * delta['lo']:+.1f}…{100 * delta['hi']:+.1f})</span>")
    reasons = "".join(f"<li>{esc(r)}</li>" for r in row.get("gate_reasons") or [] if passed is False)
    where = f"{esc(run.label)} · " if multi else ""
    return (f'<div class="{css}"><h3>{esc(row["name"])}</h3>'
            f'<div class="muted">{where}{esc(row.get("variant"))} · '
            f'{esc(row.get("quantization") or row["precision"])}</div>'
            f"<dl><dt>size</dt><dd>{human_bytes(row.get('size_bytes'))}</dd>"
            f"<dt>MACs</dt><dd>{count(row.get('macs'))}</dd><dt>params</dt><dd>{count(row.get('params'))}</dd>"
            f"<dt>host p50</dt><dd>{ms(lat[1]) + ' @' + esc(lat[0].split(':')[1]) if lat else '–'}</dd>"
            f"<dt>balanced acc.</dt><dd>{pct(row.get('balanced_accuracy'))}{change}</dd>"
            f"<dt>gate</dt><dd>{verdict(passed) if checked else NOT_CHECKED}</dd></dl>"
            + (f'<ul class="reasons">{reasons}</ul>' if reasons else "") + "</div>")


def _summary(runs: list[RunView]) -> str:
    multi = len(runs) > 1
    rows = [(run, r) for run in runs for r in run.rows]
    verdicts = [r.get("gate_passed") for _, r in rows]
    rejected = [(run, r) for run, r in rows if r.get("gate_passed") is False]
    unchecked = [r for _, r in rows if r.get("gate_status") == "not-checked"]
    if unchecked and all(v is None for v in verdicts):
        banner = (f'<div class="banner none">Gate not checked: it is disabled (verify.gate = false); '
                  f"{len(unchecked)} artifact(s) were verified but none was accepted or rejected.</div>")
    elif not rows or all(v is None for v in verdicts):
        banner = '<div class="banner none">No artifact was verified: gate not run.</div>'
    elif rejected:
        banner = f'<div class="banner bad">Gate failed: {len(rejected)} of {len(rows)} artifact(s) REJECTED.</div>'
    else:
        banner = f'<div class="banner ok">Gate passed: all {len(rows)} verified artifact(s).</div>'
    refs = []
    for run in runs:
        train, finetune = run.outcomes.train, run.outcomes.finetune
        dense, pruned = train.test if train else None, finetune.test if finetune else None
        label = f"{esc(run.label)}: " if multi else ""
        if dense:
            refs.append(f"<li>{label}dense float PyTorch model: balanced accuracy {pct(dense.balanced_accuracy)}"
                        + (f"; pruned + fine-tuned PyTorch model: {pct(pruned.balanced_accuracy)}" if pruned else "")
                        + " (test split)</li>")
    cards = "".join(_card(run, r, multi) for run, r in rows)
    body = banner + (f"<ul>{''.join(refs)}</ul>" if refs else "")
    body += "".join(sections.gate_power(run, multi) for run in runs)
    body += f'<div class="cards">{cards}</div>' if cards else '<p class="notrun">not run: no artifact was exported</p>'
    out = section("summary", "Summary", body)
    if rejected:
        items = "".join(f"<li><b>{esc(r['name'])}</b>{' (' + esc(run.label) + ')' if multi else ''}: "
                        f"{esc('; '.join(r.get('gate_reasons') or []))}</li>" for run, r in rejected)
        out += section("gate", "Gate failures", f'<ul class="reasons">{items}</ul>', "bad")
    return out


def _pareto(runs: list[RunView]) -> str:
    title = "Pareto: balanced accuracy vs latency (marker size = file size)"
    points, left_out = [], 0
    for run in runs:
        for r in run.rows:
            lat = host_latency(r)
            if lat is None or r.get("balanced_accuracy") is None:
                left_out += 1
                continue
            points.append({"run": run.label, "name": r["name"], "variant": r.get("variant") or "?",
                           "precision": r["precision"], "latency_ms": lat[1],
                           "balanced_accuracy": r["balanced_accuracy"], "size_bytes": r["size_bytes"]})
    if not points:
        return not_run("pareto", title, "no artifact has both a balanced accuracy and a meaningful host latency")
    note = (f"<p class='muted'>{left_out} artifact(s) without verify or host timing are not shown.</p>"
            if left_out else "")
    return section("pareto", title, img(plots.pareto(points), "Pareto plot of balanced accuracy vs latency") + note)


def render_html(runs: list[RunView]) -> str:
    multi = len(runs) > 1
    parts = [_summary(runs), _pareto(runs)]
    nav = ['<a href="#summary">Summary</a>', '<a href="#pareto">Pareto</a>']
    for i, run in enumerate(runs, start=1):
        suffix = f"-{i}" if multi else ""
        if multi:
            parts.append(f'<h2 class="run-title" id="run{suffix}">Run {i}: {esc(run.label)}</h2>')
        parts += [fn(run, f"{key}{suffix}") for key, _, fn in PER_RUN]
        if not multi:
            nav += [f'<a href="#{key}">{esc(label)}</a>' for key, label, _ in PER_RUN]
    if multi:
        nav += [f'<a href="#run-{i}">{esc(r.label)}</a>' for i, r in enumerate(runs, start=1)]
    title = "edgeprune report: " + ", ".join(r.label for r in runs)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
            f"<header><h1>{esc(title)}</h1><p class='muted'>generated {stamp} by edgeprune {esc(__version__)} "
            f"from {len(runs)} run(s); works offline</p><nav>{' '.join(nav)}</nav></header>"
            + "".join(parts) + "</main></body></html>\n")


def write_html_report(run_dirs: list[Path], out: Path) -> Path:
    """Load the runs and write the report atomically to ``out``."""
    if not run_dirs:
        raise EdgepruneError("no run directory given", "pass one or more directories written by 'edgeprune build'")
    runs = [load_run(d) for d in run_dirs]
    unique_labels(runs)
    write_text_atomic(out, render_html(runs))
    return Path(out)
