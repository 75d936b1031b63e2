"""`torchrun --nproc_per_node=2` trains one model with DDP (gloo on CPU)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch


def test_torchrun_two_processes_give_one_model(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists() and shutil.which("torchrun") is None:
        pytest.skip("torchrun not found")
    out = tmp_path / "dense.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": "29731"}
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node=2", "--master_port=29731", "-m", "edgeprune", "train",
         "--model", "test_tinycnn", "--epochs", "2", "--max-train", "256", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "world size 2" in proc.stdout
    assert proc.stdout.count("wrote ") == 1, "only rank 0 writes the model"
    payload = torch.load(out, weights_only=True)
    assert "state_dict" in payload and payload["meta"]["model"]["name"] == "test_tinycnn"
    assert "ranks_in_sync=True" in proc.stdout, "DDP ranks ended with different weights"
