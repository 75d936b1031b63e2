"""Resumable builds under real interrupts: `python -m edgeprune build` killed mid-export, then rerun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from edgeprune.config import load_config
from edgeprune.fsutil import sha256_file
from edgeprune.pipeline import run_build
from edgeprune.rundir.manifest import load_manifest
from tests.report.tiny import tiny_config, tiny_run, write_tiny_toml

STAGES = ["train", "prune", "finetune", "export", "verify", "profile"]
LIMIT_S = 600  # generous: a loaded CI machine; the wait ends as soon as the condition holds


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory)


def _cmd(toml: Path, run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "edgeprune", "build", "--config", str(toml), "--out", str(run), "--no-gate", *extra]


def _interruptible() -> None:
    """In the child: take Ctrl-C by default even when the test run itself ignores it (started with nohup or
    ``&`` from a script, both of which pass SIGINT on as ignored, which Python then respects)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                            cwd=Path(__file__).resolve().parents[2], preexec_fn=_interruptible)


def _manifest(run: Path) -> dict[str, Any]:
    path = run / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _status(run: Path) -> dict[str, str]:
    return {s["name"]: s["status"] for s in _manifest(run).get("stages", [])}


def _export_in_flight(run: Path, artifact: str = "") -> bool:
    """The export stage is running and a converter works in its hidden temp directory (``.<artifact>.*.export``)."""
    art = run / "artifacts"
    return _status(run).get("export") == "running" and art.is_dir() and any(
        p.name.startswith(f".{artifact}") and p.name.endswith(".export") for p in art.iterdir())


def _wait_until(proc: subprocess.Popen, log: Path, cond) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"build exited ({proc.returncode}) before the interrupt point:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the interrupt point was never reached")
        time.sleep(0.1)


def _run_to_end(cmd: list[str], log: Path) -> str:
    proc = _start(cmd, log)
    assert proc.wait(timeout=LIMIT_S) == 0, log.read_text()[-3000:]
    return log.read_text()


def _visible_outputs(run: Path) -> dict[str, Path]:
    return {f"{d}/{p.name}": p for d in ("models", "artifacts") if (run / d).is_dir()
            for p in (run / d).iterdir() if not p.name.startswith(".")}


def _temp_entries(run: Path) -> list[str]:
    return [p.name for d in (run, run / "models", run / "artifacts") if d.is_dir() for p in d.iterdir()
            if p.name.endswith((".part", ".export"))]


def _assert_complete(path: Path) -> None:
    """A file under its final name is always whole: it loads in its runtime."""
    if path.suffix == ".tflite":
        from edgeprune.runtimes import open_session

        assert open_session(path).run is not None
    elif path.suffix == ".pt":
        import torch

        assert "state_dict" in torch.load(path, map_location="cpu", weights_only=True)


def _assert_all_recorded(run: Path) -> None:
    recorded = load_manifest(run).recorded_outputs()
    for rel, path in _visible_outputs(run).items():
        assert rel in recorded, f"{rel} exists but no finished stage records it"
        assert sha256_file(path) == recorded[rel]


@pytest.fixture(scope="module")
def killed_then_resumed(tiny_run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished run, rebuilt with other export settings: SIGKILL in the middle of the conversion, look at the
    wreck, then rerun the same command."""
    base = tmp_path_factory.mktemp("resume")
    run = base / "run"
    shutil.copytree(tiny_run_dir, run)
    # only the export stage's parameters change (one fp32 artifact, to keep the test short)
    toml = write_tiny_toml(base, precisions=("fp32",), export_dense=False)
    cmd = _cmd(toml, run)
    proc = _start(cmd, base / "first.log")
    _wait_until(proc, base / "first.log", lambda: _export_in_flight(run, "pruned_tflite_fp32."))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    after_kill = {"status": _status(run), "visible": sorted(_visible_outputs(run)), "temp": _temp_entries(run)}
    for path in _visible_outputs(run).values():
        _assert_complete(path)
    console = _run_to_end(cmd, base / "second.log")
    return {"run": run, "cmd": cmd, "toml": toml, "base": base, "after_kill": after_kill, "console": console}


def test_sigkill_mid_export_leaves_only_whole_files(killed_then_resumed: dict[str, Any]) -> None:
    wreck = killed_then_resumed["after_kill"]
    assert [wreck["status"][s] for s in STAGES[:4]] == ["skipped", "skipped", "skipped", "running"]
    # the killed converter's work is in a hidden temp dir; no partial file under a final name, and the earlier
    # export's files were removed when the stage restarted, so no old artifact can pass for a new one
    assert any(name.startswith(".pruned_tflite_fp32.") and name.endswith(".export") for name in wreck["temp"])
    assert [v for v in wreck["visible"] if v.startswith("artifacts/")] == []
    assert {"models/dense.pt", "models/pruned.pt", "models/finetuned.pt"} <= set(wreck["visible"])


def test_rerun_after_sigkill_skips_finished_stages_and_completes(killed_then_resumed: dict[str, Any]) -> None:
    run, console = killed_then_resumed["run"], killed_then_resumed["console"]
    manifest = load_manifest(run)
    assert [s.status for s in manifest.stages] == ["skipped"] * 3 + ["done"] * 3
    assert console.count("unchanged, skipped") == 3
    assert [inv.status for inv in manifest.invocations][-2:] == ["killed", "done"]
    assert manifest.invocations[-1].ran == ["export", "verify", "profile"]
    assert _temp_entries(run) == []
    _assert_all_recorded(run)
    names = {a["name"] for a in json.loads((run / "report.json").read_text())["artifacts"]}
    assert names == {"pruned_tflite_fp32"}


def test_sigint_during_from_export_then_rerun(killed_then_resumed: dict[str, Any]) -> None:
    run, base = killed_then_resumed["run"], killed_then_resumed["base"]
    before = {s.name: s for s in load_manifest(run).stages}
    proc = _start(killed_then_resumed["cmd"] + ["--from", "export"], base / "third.log")
    _wait_until(proc, base / "third.log", lambda: _export_in_flight(run))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=LIMIT_S) == 130
    assert "rerun the same command to resume" in (base / "third.log").read_text()
    status = _status(run)
    manifest = load_manifest(run)
    # --from export: the earlier stages were reused, export was rerun and interrupted. Usually the interrupt
    # lands inside the conversion (export 'failed'); if Python swallowed it there (a gc callback), the runner
    # keeps the finished stage and stops right after it. Either way nothing unrecorded is left behind.
    assert [status[s] for s in STAGES[:3]] == ["skipped"] * 3
    assert manifest.invocations[-1].status == "interrupted"
    if status["export"] == "failed":
        assert "interrupted" in (manifest.stage("export").error or "")
        assert not any(rel.startswith("artifacts/") for rel in _visible_outputs(run))
    else:
        assert status["export"] == "done" and manifest.invocations[-1].ran == ["export"]
    assert _temp_entries(run) == []
    _assert_all_recorded(run)
    # the same command again (in-process, to spare a cold start): resumes from export
    cfg = load_config(killed_then_resumed["toml"])
    outcome = run_build(cfg, run, from_stage="export", console=Console(quiet=True))
    assert (outcome.skipped, outcome.ran) == (STAGES[:3], STAGES[3:])
    manifest = load_manifest(run)
    assert [s.status for s in manifest.stages] == ["skipped"] * 3 + ["done"] * 3
    for name in STAGES[:3]:
        assert manifest.stage(name).key == before[name].key
    _assert_all_recorded(run)


def test_changed_parameters_and_force_choose_what_reruns(tiny_run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "copy"
    shutil.copytree(tiny_run_dir, run)
    cfg, quiet = tiny_config(tmp_path), Console(quiet=True)
    # a changed parameter invalidates its stage and everything after it, nothing before
    changed = run_build(cfg.model_copy(update={"verify": cfg.verify.model_copy(update={"bootstrap": 150})}), run,
                        console=quiet)
    assert (changed.ran, changed.skipped) == (["verify", "profile"], STAGES[:4])
    forced = run_build(cfg, run, to_stage="train", force=True, console=quiet)
    assert (forced.ran, forced.skipped) == (["train"], [])
    # the later stages' records no longer hold: marked stale, never reused, left out of the report
    assert [s.status for s in load_manifest(run).stages] == ["done"] + ["stale"] * 5


def test_a_second_build_on_the_same_run_dir_is_refused(tiny_run_dir: Path, tmp_path: Path) -> None:
    from edgeprune.errors import EdgepruneError
    from edgeprune.rundir.files import run_dir_lock

    with run_dir_lock(tiny_run_dir):
        with pytest.raises(EdgepruneError, match="another edgeprune process"):
            run_build(tiny_config(tmp_path), tiny_run_dir, console=Console(quiet=True))


@pytest.fixture
def default_ctrl_c() -> Any:
    """Python's own SIGINT handler for the test (a run started in the background inherits SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_swallowed_ctrl_c_is_delivered_again(default_ctrl_c: None) -> None:
    """Python drops a KeyboardInterrupt raised inside __del__ / gc callbacks; the runner's guard re-sends it."""
    import time

    from edgeprune.pipeline.interrupts import InterruptGuard

    class Swallower:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(50):  # the KeyboardInterrupt is raised in here and only printed
                time.sleep(0.001)

    with InterruptGuard() as guard:
        obj = Swallower()
        del obj
        assert guard.pending
        with pytest.raises(KeyboardInterrupt):
            time.sleep(5)  # re-delivered within 0.5 s
        guard.seen()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sweeps_remove_only_temp_files_and_the_unfinished_stages_new_files(tiny_run_dir: Path, tmp_path: Path) -> None:
    from edgeprune.rundir.files import interrupted_since, sweep_temp_files, sweep_unrecorded
    from edgeprune.rundir.manifest import now

    run = tmp_path / "copy"
    shutil.copytree(tiny_run_dir, run)  # copies keep their (older) modification times
    manifest = load_manifest(run)
    assert interrupted_since(manifest) is None
    export = manifest.stage("export")
    export.status, export.started, export.outputs = "running", now(), {}
    fresh, older = run / "artifacts/pruned_tflite_fp32.tflite", run / "artifacts/dense_tflite_fp32.tflite"
    os.utime(fresh)  # written by the interrupted export
    past = time.time() - 3600
    os.utime(older, (past, past))  # from before it: not the interrupted stage's doing, kept
    (run / "models/.dense.pt.x1.part").write_bytes(b"half")
    (run / "artifacts/.pruned_tflite_int8.x2.export").mkdir()
    assert sorted(sweep_temp_files(run)) == ["artifacts/.pruned_tflite_int8.x2.export", "models/.dense.pt.x1.part"]
    assert (run / ".edgeprune.lock").exists() or not (tiny_run_dir / ".edgeprune.lock").exists()
    removed = sweep_unrecorded(run, manifest, interrupted_since(manifest))
    assert removed == ["artifacts/pruned_tflite_fp32.tflite"]
    assert older.is_file() and (run / "models/dense.pt").is_file()
