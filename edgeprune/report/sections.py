"""The per-run sections of the HTML report; each shows 'not run' instead of failing when its data is missing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgeprune.report import plots
from edgeprune.report.collect import RunView
from edgeprune.report.markup import count, esc, img, ms, not_run, pct, section, table
from edgeprune.rundir.paths import DENSE


def _missing(run: RunView, stage: str) -> str:
    record = run.manifest.stage(stage)
    return f"the {stage} stage is '{record.status}'" if record else f"no {stage} stage in this run yet"


def channels(run: RunView, sid: str) -> str:
    title = "Channels per layer, before and after pruning"
    prune = run.outcomes.prune
    if prune is None:
        return not_run(sid, title, _missing(run, "prune"))
    widths = prune.widths
    if not widths:
        return not_run(sid, title, f"nothing was pruned (criterion '{prune.criterion}', no budget)")
    macs, params = prune.macs, prune.params
    facts = (f"<p>criterion <b>{esc(prune.criterion)}</b>, budget {esc(prune.budget.get('kind'))} "
             f"−{pct(prune.budget.get('reduction'), 0)}, achieved −{pct(prune.achieved_reduction)}; "
             f"MACs {count(macs.get('dense'))} → {count(macs.get('pruned'))}, "
             f"params {count(params.get('dense'))} → {count(params.get('pruned'))}</p>")
    notes = "".join(f"<li>{esc(n)}</li>" for n in prune.notes)
    return section(sid, title, facts + img(plots.channel_bars(widths), "channels per layer before and after pruning")
                   + (f"<ul>{notes}</ul>" if notes else ""))


def sensitivity(run: RunView, sid: str) -> str:
    title = "Per-class sensitivity change vs the dense float model"
    verified = run.outcomes.verified
    if not verified:
        return not_run(sid, title, _missing(run, "verify"))
    classes = run.class_names
    per_class = {n: v.vs_dense_float["per_class_sensitivity"] for n, v in verified.items() if v.vs_dense_float}
    deltas = np.array([[100 * d["delta"] for d in ds] for ds in per_class.values()])
    significant = np.array([[d["hi"] < 0 for d in ds] for ds in per_class.values()])
    names = list(per_class)
    uri = plots.sensitivity_heatmap(names, classes, deltas, significant)
    caption = ("<p>Percentage points, artifact minus dense float PyTorch model, on the test split; "
               "* = the whole 95% bootstrap interval is below zero.</p>")
    return section(sid, title, caption + img(uri, "per-class sensitivity change heatmap"))


def confusion(run: RunView, sid: str) -> str:
    title = "Confusion matrices before and after"
    ref = run.outcomes.verify.reference.get(DENSE) if run.outcomes.verify else None
    verified = run.outcomes.verified
    if ref is None or not verified:
        return not_run(sid, title, _missing(run, "verify"))
    variants = {r["name"]: r.get("variant") for r in run.rows}
    chosen = [n for n in verified if variants.get(n) == "pruned"] or list(verified)
    labelled = [("dense float (PyTorch)", ref), *((n, verified[n].metrics) for n in chosen)]
    panels = [(label, m.confusion) for label, m in labelled if m is not None and m.confusion is not None]
    legend = ", ".join(f"{i} = {esc(c)}" for i, c in enumerate(run.class_names))
    images = "".join(img(plots.confusion_matrix(title, cm), f"confusion matrix: {title}") for title, cm in panels)
    return section(sid, title, f"<p>Rows: true class, columns: predicted; colour: share of the row. {legend}.</p>"
                   f'<div class="grid">{images}</div>')


def drift(run: RunView, sid: str) -> str:
    title = "Numeric drift per artifact (vs its PyTorch model)"
    if not run.outcomes.verified:
        return not_run(sid, title, _missing(run, "verify"))
    rows, notes = [], []
    for r in run.rows:
        d = r.get("drift") or {}
        if not d:
            continue
        rows.append([r["name"], r.get("quantization") or r["precision"], pct(d.get("top1_agreement"), 2),
                     f"{d.get('max_abs', math.nan):.3g}", f"{d.get('mean_abs', math.nan):.3g}",
                     f"{d.get('cosine', math.nan):.6f}"])
        notes += [f"<li><b>{esc(r['name'])}</b>: {esc(n)}</li>" for n in r.get("notes") or []]
    body = table(["artifact", "quantization", "top-1 agreement", "max-abs", "mean-abs", "cosine"], rows,
                 numeric=(2, 3, 4, 5))
    return section(sid, title, body + (f"<ul class='notes'>{''.join(notes)}</ul>" if notes else ""))


def curve(run: RunView, sid: str) -> str:
    title = "Training and fine-tuning curve"
    phases = []
    train, ft = run.outcomes.train, run.outcomes.finetune
    for outcome, label in ((train, "dense training"), (ft, "recovery after pruning")):
        if outcome is not None and outcome.history:
            phases.append((label, outcome.history))
    if not phases:
        why = ("the dense model was loaded from weights (no training)" if train is not None and train.trained is False
               else _missing(run, "train"))
        return not_run(sid, title, why)
    extra = f"<p>fine-tuning: {esc(ft.skipped_reason)}</p>" if ft is not None and ft.skipped_reason else ""
    if ft is not None and ft.selection.get("reason"):  # which epoch recovery kept, and why (validation only)
        extra += (f"<p>fine-tuning kept epoch {ft.best_epoch}: {esc(ft.selection['reason'])}"
                  f"{'; length ' + esc(ft.length_rule) if ft.length_rule else ''}.</p>")
    return section(sid, title, "<p>Validation balanced accuracy per epoch; the dotted line marks pruning.</p>"
                   + extra + img(plots.training_curve(phases), "validation balanced accuracy per epoch"))


def search(run: RunView, sid: str) -> str:
    title = "Search: every trial against the contract (validation split)"
    prune = run.outcomes.prune
    found = getattr(prune, "search", None) if prune is not None else None
    if not found:
        why = ("a fixed budget was given (no search)" if prune is not None else _missing(run, "prune"))
        return not_run(sid, title, why)
    trials, contract, chosen = found["trials"], found["contract"], found.get("chosen")
    facts = (f"<p>objective <b>{esc(found['objective'])}</b> (trials compared on {esc(found['proxy'])}, the "
             f"finalists timed on the device), pruner {esc(found['pruner'])}, {len(trials)} trials in "
             f"{found['seconds']:.0f} s; contract: balanced-accuracy drop ≤ {contract['max_bal_acc_drop']:g} pp, "
             f"per-class sensitivity drop ≤ {contract['max_class_sensitivity_drop']:g} pp (upper 95% bounds on "
             f"validation). The test split was not read by the search.</p>")
    uri = plots.search_scatter(trials, contract, chosen, found.get("dense_val_balanced_accuracy"))
    rows = [[str(t["number"]) + (" ★" if t["number"] == chosen else ""), t["params"]["criterion"],
             pct(t["params"]["level"], 0), str(t["params"]["epochs"]), t["state"],
             pct(t.get("val_balanced_accuracy")), pct(t.get("val_worst_class_sensitivity")),
             f"{t['bal_acc_drop_ub_pp']:.1f} / {t['worst_class_drop_ub_pp']:.1f}"
             if t.get("bal_acc_drop_ub_pp") is not None else "–",
             ms(t.get("latency_ms")) if t.get("latency_ms") is not None else "–",
             t.get("why_rejected") or "chosen"] for t in trials]
    head = ["#", "criterion", "MAC cut asked", "epochs", "state", "val bal. acc", "worst class", "drop UB (pp)",
            "latency", "why not chosen"]
    return section(sid, title, facts + img(uri, "search trials: validation scores vs MACs") + table(head, rows))


def _device(m: dict[str, Any]) -> str:
    d = m.get("device", {})
    return " ".join(str(x) for x in (d.get("kind"), d.get("model"), d.get("id")) if x)


def devices(run: RunView, sid: str) -> str:
    title = "Device measurements"
    if run.outcomes.profile is None:
        return not_run(sid, title, _missing(run, "profile"))
    meas = run.measurements
    if not meas:
        return not_run(sid, title, "no device produced a measurement")
    rows = []
    for m in meas:
        lat = m.get("latency") or {}
        if m.get("timing_meaningful", True) and lat:
            timing = [ms(lat.get("p50_ms")), ms(lat.get("p90_ms")), f"{lat['mean_ms']:.3f} ± {lat['std_ms']:.3f}"]
        else:
            timing = ['<span class="muted">not meaningful</span>'] * 3
        rss, model_mb, par = m.get("peak_rss_mb"), m.get("model_peak_mb"), m.get("parity")
        rows.append([m["artifact_name"], _device(m), m.get("runtime"), m.get("delegate"), m.get("threads"), *timing,
                     ms(m.get("init_ms")), "–" if rss is None else f"{rss:.1f} MB",
                     "–" if model_mb is None else f"{model_mb:.1f} MB",
                     "–" if not par else f"max-abs {par['max_abs']:.2e} · top-1 {100 * par['top1_agreement']:.1f} %",
                     m.get("runs")])  # fmt: skip
    fps = {(_device(m), m["device"].get("os"), m["device"].get("abi"), m["device"].get("cores")) for m in meas}
    fp = "".join(f"<li>{esc(d)} · {esc(os_)} · {esc(abi)} · {esc(cores)} cores</li>" for d, os_, abi, cores in fps)
    checked = next((m["parity"] for m in meas if m.get("parity")), None)
    legend = ("<p>model memory: the peak resident memory of loading and running the model minus the same process "
              "with only the runtime loaded (weights, packed weights, tensor arena, the runtime's first-use "
              "costs); peak RSS is the whole process.</p>")
    if checked:
        legend += (f"<p>vs x86: an emulated lane's outputs compared with the {esc(checked['reference'])} runtime on "
                   f"{esc(checked['inputs'])}; its timings and memory are not meaningful.</p>")
    return section(sid, title, table(
        ["artifact", "device", "runtime", "delegate", "threads", "p50", "p90", "mean ± std (ms)", "init",
         "peak RSS", "model memory", "vs x86", "runs"], rows, numeric=(4, 5, 6, 7, 8, 9, 10, 12), raw=(5, 6, 7))
        + f"<ul>{fp}</ul>" + legend)


def bakeoff(run: RunView, sid: str) -> str:
    title = "Criteria bake-off"
    if not run.compare or not run.compare["rows"]:
        why = "this run was not a 'compare' (no compare.json)" if not run.compare else "compare.json has no usable row"
        return not_run(sid, title, why + "".join(f"; {n}" for n in run.notes))
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in run.compare["rows"]:
        groups.setdefault((str(r["criterion"]), float(r["reduction"])), []).append(r)
    series: dict[str, list[tuple[float, float, float, int]]] = {}
    rows = []
    for (crit, red), rs in sorted(groups.items()):
        acc = np.array([float(r["balanced_accuracy"]) for r in rs])
        f1 = [float(r["macro_f1"]) for r in rs if r.get("macro_f1") is not None]
        std = float(acc.std(ddof=1)) if len(acc) > 1 else 0.0
        series.setdefault(crit, []).append((red, float(acc.mean()), std, len(acc)))
        rows.append([crit, pct(red, 0), len(acc), f"{100 * acc.mean():.1f} ± {100 * std:.1f}",
                     f"{100 * np.mean(f1):.1f}" if f1 else "–"])
    kind = str(run.compare["rows"][0].get("budget") or "flops")
    dense = run.compare.get("dense_balanced_accuracy")
    body = img(plots.bakeoff(series, kind, dense), "criteria bake-off: balanced accuracy vs budget")
    body += table(["criterion", f"{kind} reduction", "seeds", "balanced acc. (%) mean ± std", "macro-F1 (%)"], rows,
                  numeric=(1, 2, 3, 4))
    if not run.compare.get("complete", True):
        body += '<p class="muted">the bake-off is still running or was interrupted: rows so far</p>'
    return section(sid, title, body + "".join(f'<p class="muted">{esc(n)}</p>' for n in run.notes))


def _pp(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f} pp"


def gate_power(run: RunView, multi: bool = False) -> str:
    """What the split sizes can certify, and how the test split was used (inside the summary)."""
    verify = run.outcomes.verify
    power = verify.gate_power if verify else None
    if not power:
        return ""
    label = f" ({esc(run.label)})" if multi else ""
    limit = power["limits"]["max_class_sensitivity_drop"]
    rows = []
    for split, sp in power["splits"].items():
        for c in sp["classes"]:
            one, two = _pp(c["one_flip_ub_pp"]), _pp(c["two_flip_ub_pp"])
            ok = '<span class="pass">yes</span>' if c["certifiable"] else '<span class="fail">no</span>'
            rows.append([split, c["name"], c["n"], one, two, ok])
    reads = "; ".join(verify.test_reads) if verify and verify.test_reads else "none recorded"
    bal_limit = power["limits"]["max_bal_acc_drop"]
    bal = "; ".join(f"{esc(split)} {_pp(sp['bal_acc_one_flip_ub_pp'])}"
                    + ("" if sp["bal_acc_certifiable"] else " (not certifiable)")
                    for split, sp in power["splits"].items())
    text = (f"<h3>What the gate can certify{label}</h3>"
            "<p class='muted'>For each class: the upper bound of its sensitivity drop that the gate's own "
            "bootstrap gives a model that loses 1 (or 2) correct predictions of that class and changes nothing "
            "else. A class is certifiable when that bound is within the limit "
            f"({limit:g} pp); otherwise the gate can only pass models that keep every correct prediction of it. "
            f"Balanced accuracy, one lost prediction of the rarest class (limit {bal_limit:g} pp): {bal}.</p>"
            + table(["split", "class", "images", "1 lost prediction", "2 lost", f"≤ {limit:g} pp certifiable"],
                    rows, numeric=(2, 3, 4), raw=(5,))
            + "<p>The test split is read once, for the final verdict of the chosen artifacts; every choice "
              "(the int8 repair ladder) reads the validation split, and nothing is chosen from the test metrics "
              "of the PyTorch models. "
              f"<span class='muted'>Test reads: {esc(reads)}.</span></p>")
    return text
