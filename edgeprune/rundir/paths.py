"""The standard layout of a run directory: where every stage writes and every reader looks."""

from __future__ import annotations

MANIFEST = "manifest.json"
LOCK_FILE = ".edgeprune.lock"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
COMPARE_JSON = "compare.json"

MODELS_DIR = "models"
ARTIFACTS_DIR = "artifacts"
OUTPUT_DIRS = (MODELS_DIR, ARTIFACTS_DIR)  # only what a finished stage records is trusted in these

DENSE = f"{MODELS_DIR}/dense.pt"
PRUNED = f"{MODELS_DIR}/pruned.pt"
FINETUNED = f"{MODELS_DIR}/finetuned.pt"
FINETUNED_PT2 = f"{MODELS_DIR}/finetuned.pt2"
