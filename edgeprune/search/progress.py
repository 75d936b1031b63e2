"""The live view of a search: one row per trial (criterion, level, epochs, val verdict) and the best so far."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


def trial_row(t: Any) -> dict[str, Any]:
    """A plain summary of one stored Optuna trial."""
    val = t.user_attrs.get("val") or t.user_attrs.get("last") or {}
    return {
        "number": t.number, "state": t.state.name.lower(), "criterion": t.params.get("criterion"),
        "level": t.params.get("level"), "epochs": t.params.get("epochs"), "val": val,
        "macs": t.user_attrs.get("macs"), "cost": t.user_attrs.get("cost"), "error": t.user_attrs.get("error"),
        "killed": bool(t.user_attrs.get("killed")), "stopped_after_epochs": t.user_attrs.get("stopped_after_epochs"),
        "seed": t.user_attrs.get("seed"), "seconds": t.user_attrs.get("seconds"),
    }


def _verdict(row: dict[str, Any]) -> Text:
    if row["state"] == "running":
        epoch = row.get("stopped_after_epochs")
        return Text(f"running (epoch {epoch})" if epoch else "running", style="cyan")
    if row["state"] == "fail":
        return Text("killed, requeued" if row["killed"] else "failed", style="red")
    if row["state"] == "pruned":
        return Text(f"stopped early ({row['stopped_after_epochs']} ep)", style="dim")
    if not row["val"]:
        return Text("-")
    return Text("meets contract", style="green") if not row["val"].get("broken") else Text("breaks", style="yellow")


class SearchProgress:
    """A rich Live table refreshed from trial rows; silent on a quiet console."""

    def __init__(self, console: Console, total: int, contract: str) -> None:
        self.console, self.total, self.contract = console, total, contract
        self.rows: dict[int, dict[str, Any]] = {}
        self.live = Live(console=console, get_renderable=self.render, refresh_per_second=2, transient=False)

    def __enter__(self) -> SearchProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def update_trials(self, trials: list[Any]) -> None:
        """Replace the rows in one assignment: the Live thread may be rendering the old ones meanwhile."""
        self.rows = {t.number: trial_row(t) for t in trials if t.state.name != "WAITING"}

    def running(self, number: int, params: dict[str, Any], epoch: int, val: dict[str, Any]) -> None:
        """A trial of this process finished a recovery epoch: show its current validation score."""
        row = {"number": number, "state": "running", "criterion": params.get("criterion"),
               "level": params.get("level"), "epochs": params.get("epochs"), "val": val, "macs": None,
               "cost": None, "error": None, "killed": False, "stopped_after_epochs": epoch, "seed": None,
               "seconds": None}
        self.rows = {**self.rows, number: row}

    def on_trial(self, study: Any, trial: Any) -> None:
        """Optuna callback (trials run in this process)."""
        self.update_trials(study.get_trials(deepcopy=False))

    def best(self) -> dict[str, Any] | None:
        ok = [r for r in list(self.rows.values())
              if r["state"] == "complete" and r["val"] and not r["val"].get("broken")]
        return min(ok, key=lambda r: r["cost"]) if ok else None

    def render(self) -> Group:
        table = Table(title=f"search: {len(self.rows)}/{self.total} trials", title_justify="left", expand=False)
        for col in ("#", "criterion", "MAC cut", "epochs", "val bal-acc", "worst class", "drop UB (pp)", "verdict"):
            table.add_column(col)
        rows = self.rows
        for r in sorted(rows.values(), key=lambda r: r["number"])[-12:]:
            v = r["val"]
            table.add_row(str(r["number"]), str(r["criterion"]), f"{(r['level'] or 0):.0%}", str(r["epochs"]),
                          f"{100 * v['balanced_accuracy']:.1f}" if v else "-",
                          f"{v['worst_class']} {100 * v['worst_class_sensitivity']:.0f}%" if v else "-",
                          f"{v['bal_acc_drop_ub_pp']:.1f} / {v['worst_class_drop_ub_pp']:.1f}" if v else "-",
                          _verdict(r))
        best = self.best()
        line = (f"best so far: trial {best['number']} ({best['criterion']}, -{best['level']:.0%} MACs target, "
                f"{100 * (1 - best['cost']):.0f}% cut)" if best else "best so far: none meets the contract yet")
        return Group(Text(f"contract: {self.contract}", style="dim"), table, Text(line, style="bold"))
