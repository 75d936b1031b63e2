"""Matplotlib figures for the HTML report, returned as inline ``data:image/png;base64`` URIs.

Figures are built with the object API on an Agg canvas (no pyplot), so nothing touches the caller's backend
or global state, and the PNGs carry no metadata (no version string, no URL).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

DPI = 110
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
MARKERS = {"pruned": "o", "dense": "s"}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def pareto(points: list[dict[str, Any]]) -> str:
    """Balanced accuracy vs latency; marker area ~ file size, colour = run, shape = variant; front drawn."""
    fig = _figure(5.6, 3.8)
    ax = fig.add_subplot()
    runs = list(dict.fromkeys(p["run"] for p in points))
    biggest = max(p["size_bytes"] for p in points) or 1
    for i, run in enumerate(runs):
        for variant in dict.fromkeys(p["variant"] for p in points if p["run"] == run):
            sel = [p for p in points if p["run"] == run and p["variant"] == variant]
            ax.scatter([p["latency_ms"] for p in sel], [100 * p["balanced_accuracy"] for p in sel],
                       s=[40 + 460 * p["size_bytes"] / biggest for p in sel], c=COLORS[i % len(COLORS)],
                       marker=MARKERS.get(variant, "D"), alpha=0.75, edgecolors="black", linewidths=0.6,
                       label=f"{run} ({variant})" if len(runs) > 1 else str(variant))
            for p in sel:
                ax.annotate(p["precision"], (p["latency_ms"], 100 * p["balanced_accuracy"]), fontsize=7,
                            xytext=(5, 4), textcoords="offset points")
    front = pareto_front(points)
    if len(front) > 1:
        ax.step([p["latency_ms"] for p in front], [100 * p["balanced_accuracy"] for p in front], where="post",
                color="black", linewidth=0.8, linestyle="--", label="Pareto front")
    ax.set_xlabel("host latency p50 (ms)")
    ax.set_ylabel("balanced accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, markerscale=0.5, loc="best")
    return to_data_uri(fig)


def pareto_front(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points no other point beats on both latency (lower) and balanced accuracy (higher)."""
    front, best = [], -np.inf
    for p in sorted(points, key=lambda q: (q["latency_ms"], -q["balanced_accuracy"])):
        if p["balanced_accuracy"] > best:
            front.append(p)
            best = p["balanced_accuracy"]
    return front


def channel_bars(widths: dict[str, dict[str, int]]) -> str:
    """Channels per prunable layer group, before and after pruning (horizontal bars)."""
    names = list(widths)
    before = np.array([widths[n]["before"] for n in names])
    after = np.array([widths[n]["after"] for n in names])
    fig = _figure(5.6, 1.2 + 0.24 * len(names))
    ax = fig.add_subplot()
    y = np.arange(len(names))
    ax.barh(y, before, color="#c9d6e8", label="before")
    ax.barh(y, after, color="#1f77b4", height=0.5, label="after")
    for yi, (b, a) in enumerate(zip(before, after, strict=True)):
        ax.text(b, yi, f" {a}/{b}", va="center", fontsize=7)
    ax.set_yticks(y, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("output channels")
    ax.set_xlim(0, before.max() * 1.18 if len(before) else 1)
    ax.legend(fontsize=8, loc="lower right")
    return to_data_uri(fig)


def sensitivity_heatmap(artifacts: list[str], classes: list[str], deltas_pp: np.ndarray,
                        significant: np.ndarray) -> str:
    """Per-class sensitivity change (pp) vs the dense float model; '*' = the whole interval is a drop."""
    fig = _figure(min(1.6 + 0.9 * len(classes), 9.0), 1.0 + 0.42 * len(artifacts))
    ax = fig.add_subplot()
    limit = max(1.0, float(np.nanmax(np.abs(deltas_pp))) if deltas_pp.size else 1.0)
    im = ax.imshow(deltas_pp, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for (r, c), v in np.ndenumerate(deltas_pp):
        ax.text(c, r, f"{v:+.1f}{'*' if significant[r, c] else ''}", ha="center", va="center", fontsize=7,
                color="white" if abs(v) > 0.6 * limit else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(artifacts)), artifacts, fontsize=8)
    fig.colorbar(im, ax=ax, label="sensitivity change (pp)", shrink=0.9)
    return to_data_uri(fig)


def confusion_matrix(title: str, cm: list[list[int]]) -> str:
    """One confusion matrix: colour = row-normalised rate, text = counts (rows = true class)."""
    counts = np.asarray(cm, dtype=float)
    k = counts.shape[0]
    side = min(1.6 + 0.5 * k, 6.0)
    fig = _figure(side, side + 0.2)
    ax = fig.add_subplot()
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (r, c), v in np.ndenumerate(counts):
        ax.text(c, r, f"{int(v)}", ha="center", va="center", fontsize=9 if k <= 6 else 7,
                color="white" if rates[r, c] > 0.6 else "black")
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(k), [str(j) for j in range(k)])
    ax.set_yticks(range(k), [str(j) for j in range(k)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return to_data_uri(fig)


def training_curve(phases: list[tuple[str, list[dict[str, float]]]]) -> str:
    """Validation balanced accuracy per epoch, phases (training, fine-tuning) one after the other."""
    fig = _figure(5.6, 3.0)
    ax = fig.add_subplot()
    offset = 0
    for i, (label, history) in enumerate(phases):
        xs = [offset + int(h["epoch"]) for h in history]
        ys = [100 * h["val_balanced_accuracy"] for h in history]
        ax.plot(xs, ys, marker="o", markersize=3, color=COLORS[i % len(COLORS)], label=label)
        if offset:
            ax.axvline(offset + 0.5, color="grey", linestyle=":", linewidth=0.8)
        offset = xs[-1] if xs else offset
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("val balanced accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return to_data_uri(fig)


def bakeoff(series: dict[str, list[tuple[float, float, float, int]]], kind: str = "flops",
            dense: float | None = None) -> str:
    """Criteria bake-off: mean +- std balanced accuracy (over seeds) vs the budget, one line per criterion."""
    fig = _figure(5.6, 3.4)
    ax = fig.add_subplot()
    n = len(series)
    for i, (criterion, pts) in enumerate(sorted(series.items())):
        pts = sorted(pts)
        dodge = 0.35 * (i - (n - 1) / 2)  # side by side at the same budget, so error bars stay readable
        ax.errorbar([100 * p[0] + dodge for p in pts], [100 * p[1] for p in pts], yerr=[100 * p[2] for p in pts],
                    marker="o", markersize=4, capsize=3, color=COLORS[i % len(COLORS)], label=criterion)
    if dense is not None:
        ax.axhline(100 * dense, color="grey", linestyle="--", linewidth=0.8, label="dense")
    ax.set_xlabel(f"{'MACs' if kind == 'flops' else kind} reduction (%)")
    ax.set_ylabel("balanced accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return to_data_uri(fig)


def search_scatter(trials: list[dict[str, Any]], contract: dict[str, Any], chosen: int | None,
                   dense_bal_acc: float | None = None) -> str:
    """Left: validation balanced accuracy and worst-class sensitivity vs MACs; right: the upper bounds of the
    drops the contract limits, with its lines. Green = meets the contract, red = breaks it, grey = stopped early."""
    fig = _figure(9.0, 3.6)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    scored = [t for t in trials if t.get("macs") and t.get("val_balanced_accuracy") is not None]

    def colour(t: dict[str, Any]) -> str:
        if t["state"] != "complete":
            return "#9e9e9e"
        return "#2ca02c" if t.get("meets_contract") else "#d62728"

    for t in scored:
        x, c = t["macs"] / 1e6, colour(t)
        left.scatter([x], [100 * t["val_balanced_accuracy"]], c=c, marker="o", edgecolors="black", linewidths=0.5)
        if t.get("val_worst_class_sensitivity") is not None:
            left.scatter([x], [100 * t["val_worst_class_sensitivity"]], c=c, marker="v", edgecolors="black",
                         linewidths=0.5)
        right.scatter([x], [t["bal_acc_drop_ub_pp"]], c=c, marker="o", edgecolors="black", linewidths=0.5)
        right.scatter([x], [t["worst_class_drop_ub_pp"]], c=c, marker="v", edgecolors="black", linewidths=0.5)
        for ax, y in ((left, 100 * t["val_balanced_accuracy"]), (right, t["bal_acc_drop_ub_pp"])):
            ax.annotate(str(t["number"]), (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    for t in scored:
        if t["number"] == chosen:
            x = t["macs"] / 1e6
            left.scatter([x], [100 * t["val_balanced_accuracy"]], s=260, marker="*", c="gold", edgecolors="black",
                         label=f"chosen (trial {chosen})", zorder=5)
            right.scatter([x], [t["bal_acc_drop_ub_pp"]], s=260, marker="*", c="gold", edgecolors="black", zorder=5)
    if dense_bal_acc is not None and contract.get("max_bal_acc_drop") is not None:
        left.axhline(100 * dense_bal_acc - contract["max_bal_acc_drop"], color="black", linestyle="--", linewidth=0.8,
                     label="dense − allowed drop")
    if contract.get("min_class_sensitivity") is not None:
        left.axhline(contract["min_class_sensitivity"], color="purple", linestyle=":", linewidth=0.8,
                     label="class sensitivity floor")
    right.axhline(contract["max_bal_acc_drop"], color="black", linestyle="--", linewidth=0.8,
                  label="limit: balanced accuracy")
    right.axhline(contract["max_class_sensitivity_drop"], color="black", linestyle=":", linewidth=0.8,
                  label="limit: per class")
    left.set_ylabel("validation (%)  ○ balanced acc  ▽ worst class")
    right.set_ylabel("drop, upper 95% bound (pp)")
    for ax in (left, right):
        ax.set_xlabel("MACs (M)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return to_data_uri(fig)
