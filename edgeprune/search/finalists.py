"""The expensive end of the search: export the best feasible trials to fp32 .tflite and time them for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeprune.fsutil import sha256_file
from edgeprune.pipeline.checkpoints import load_checkpoint
from edgeprune.search.env import SearchEnv

FINALIST_RUNS = 20


def measure(env: SearchEnv, rows: list[dict[str, Any]]) -> None:
    """Add ``size_kb`` (fp32 .tflite) and ``latency_ms`` (p50, 1 thread, first profile device) to ``rows``."""
    from edgeprune.devices import BenchSpec, open_device
    from edgeprune.export import ExportRequest, get_exporter

    ctx = env.ctx
    exporter = get_exporter("tflite")
    device_spec = env.cfg.profile.devices[0] if env.cfg.profile.devices else "host"
    device = open_device(device_spec)
    want_latency = env.cfg.search.objective == "latency" or env.cfg.search.latency_budget_ms is not None
    out_dir = env.search_dir / "finalists"
    for row in rows:
        model, _ = load_checkpoint(env.trial_checkpoint(row["number"]), ctx.fresh_model(), ctx.example_input)
        name = f"trial-{row['number']:03d}_fp32"
        rec = exporter.export(ExportRequest(model=model, example_input=ctx.example_input, precision="fp32",
                                            out_dir=out_dir, name=name)).model_dump()
        path = out_dir / Path(rec["file"]).name
        row["size_kb"] = round(path.stat().st_size / 1024, 1)
        row["latency_device"] = device_spec
        if want_latency:
            got = device.benchmark(path, BenchSpec(threads=[1], warmup=3, runs=FINALIST_RUNS), name,
                                   sha256_file(path))
            lat = got[0].latency if got else None
            row["latency_ms"] = round(lat.p50_ms, 4) if lat is not None and got[0].timing_meaningful else None
