"""int8 repair ladder: when a full-int8 artifact fails the gate, try cheaper-to-costlier fixes until one passes.

The rungs (:mod:`edgeprune.export.repair.rungs`) run in order, each building on the configuration the previous
ones settled on. The ladder stops at the first variant that passes; every attempt is returned (what, file,
metrics, verdict; see :mod:`edgeprune.export.repair.base`). Files of failed attempts are kept so the manifest
can point at them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeprune.errors import EdgepruneError
from edgeprune.export.repair.base import Attempt, Evaluate, LadderRun, RepairConfig, RepairInputs
from edgeprune.export.repair.rungs import LADDER, RUNGS

INT8_PRECISIONS = ("int8", "int8-per-tensor")


def is_repairable(artifact: dict[str, Any]) -> bool:
    """True for full-int8 TFLite artifacts (the ladder's subject)."""
    return (
        artifact.get("format") == "tflite"
        and artifact.get("precision") in INT8_PRECISIONS
        and artifact.get("quantization") == "full-int8"
    )


def repair_int8(inputs: RepairInputs, failing_artifact: dict[str, Any], evaluate: Evaluate,
                rungs: tuple[str, ...] = RUNGS) -> list[Attempt]:  # fmt: skip
    """Run the ladder for one rejected full-int8 artifact; the last attempt has status 'passed' on success.

    ``failing_artifact`` is the artifact's record (a dict with at least name, file, format, backend, precision,
    quantization); ``evaluate(path)`` returns at least ``{"gate": {"passed": bool, ...}, "metrics": ...}`` for
    the file at ``path``.
    """
    art = failing_artifact
    if not is_repairable(art):
        raise EdgepruneError(
            f"artifact '{art.get('name')}' is not a full-int8 TFLite file",
            "only full-int8 artifacts can be repaired",
        )
    unknown = [r for r in rungs if r not in RUNGS]
    if unknown:
        raise EdgepruneError(f"unknown repair rung(s) {unknown}", f"use some of: {', '.join(RUNGS)}")
    io = str(art["inputs"][0]["dtype"]) if art.get("inputs") else "int8"
    cfg = RepairConfig(
        backend=art["backend"], precision=art["precision"],
        calib_ids=list(art.get("calibration_ids") or inputs.calib_ids),
        io_dtype=io if io in ("int8", "uint8", "float32") else "int8", io_layout=art.get("io_layout", "NCHW"),
    )  # fmt: skip
    run = LadderRun(inputs, art, cfg, evaluate, int8_file=Path(inputs.out_dir) / Path(art["file"]).name)
    attempts: list[Attempt] = []
    for number, rung in enumerate(LADDER, start=1):
        if rung.step not in rungs:
            continue
        for att in rung.attempts(run, number):
            attempts.append(att)
            inputs.log(f"repair {art['name']} rung {number} {rung.step}: {att['status']} {att.get('reason', '')}")
            if att["status"] == "passed":
                return attempts
    return attempts
