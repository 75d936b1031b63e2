"""How the run was made: every command, tool versions, input hashes, seeds, split fingerprints, stage keys."""

from __future__ import annotations

import shlex
from typing import Any

from edgeprune.report.collect import RunView
from edgeprune.report.markup import esc, section, table


def provenance(run: RunView, sid: str) -> str:
    m = run.manifest
    commands = m.invocations or []
    if commands:
        items = "".join(
            f"<li><code>{esc(shlex.join(inv.command) or '(called from Python)')}</code><br>"
            f'<span class="muted">{esc(inv.started)} · {esc(inv.status)} · in {esc(inv.cwd)} · '
            f"ran {esc(', '.join(inv.ran) or 'nothing')}"
            f"{' · skipped ' + esc(', '.join(inv.skipped)) if inv.skipped else ''}</span></li>"
            for inv in commands)
        cmd_html = f"<ol class='cmds'>{items}</ol>"
    else:
        cmd_html = f"<pre>{esc(shlex.join(m.command) or '(called from Python)')}</pre>"
    inputs = [[name, info.get("source") or info.get("path") or info.get("spec") or "", info.get("sha256")]
              for name, info in m.inputs.items()]
    repro = m.reproducibility
    seeds: list[list[Any]] = [["seed", repro.get("seed", m.config.get("seed"))],
             ["calibration images", f"{len(m.data.get('calibration_ids', []))} from "
                                    f"{m.data.get('calibration_split', 'train')}, ids sha256 "
                                    f"{repro.get('calibration_ids_sha256', '–')}"],
             ["torch threads", repro.get("torch_threads", "–")],
             ["deterministic algorithms", repro.get("deterministic_algorithms", "–")]]
    seeds += [[f"{name} split", f"{info['n']} images, sha256 {info['sha256']}"]
              for name, info in repro.get("splits", {}).items()]
    versions = [[k, v] for k, v in sorted(m.versions.items())]
    body = (
        "<h3>Commands</h3>" + cmd_html
        + "<h3>Inputs</h3>" + table(["input", "source", "sha256"], inputs)
        + "<h3>Seeds, splits and calibration</h3>" + table(["what", "value"], seeds)
        + "<h3>Versions</h3>" + table(["tool", "version"], versions)
        + f"<p class='muted'>Rebuild and check bit-identity: <code>edgeprune rebuild {esc(run.run_dir)}</code></p>"
    )
    return section(sid, "How this was made (commands and versions)", body)


def stages(run: RunView, sid: str) -> str:
    rows = []
    for s in run.manifest.stages:
        status = f'<span class="fail">{esc(s.status)}</span>' if s.status in ("failed", "running") else esc(s.status)
        rows.append([s.name, status, "–" if s.seconds is None else f"{s.seconds:.1f}", s.key, s.started or "–",
                     esc(s.error or "")])
    if not rows:
        return section(sid, "Stages", '<p class="notrun">not run: no stage has started</p>')
    return section(sid, "Stages", table(["stage", "status", "seconds", "cache key", "started", "error"], rows,
                                        numeric=(2,), raw=(1, 5)))


def data_overview(run: RunView, sid: str) -> str:
    m, d = run.manifest, run.manifest.data
    counts = d.get("class_counts", {})
    rows = [[i, name, *(counts.get(split, [None] * (i + 1))[i] for split in ("train", "test"))]
            for i, name in enumerate(run.class_names)]
    pre = m.preprocessing
    facts = (f"<p><b>{esc(d.get('name'))}</b> ({esc(d.get('source'))}): "
             f"{esc(' · '.join(f'{k} {v}' for k, v in d.get('sizes', {}).items()))} images. "
             f"{esc(d.get('split_note', ''))}</p>"
             f"<p>model <b>{esc(m.config.get('model', {}).get('name'))}</b>, input "
             f"{esc(pre.get('input_size'))} {esc(pre.get('layout', ''))} {esc(pre.get('channel_order', ''))}, "
             f"mean {esc(pre.get('mean'))}, std {esc(pre.get('std'))}</p>")
    return section(sid, "Data and model", facts + table(["#", "class", "train", "test"], rows, numeric=(2, 3)))
