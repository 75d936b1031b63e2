"""Load test for `edgeprune serve`: delivery (current + download) and measurement upload, on 127.0.0.1 only.

Starts the server as a separate process (``python -m edgeprune.server``) with a throwaway data directory,
publishes one bundle, then runs bounded loops from N client threads and reports requests/s and latency
percentiles. Results are printed and written to ``benchmarks/results/server_load.json``.

    .venv/bin/python benchmarks/load_server.py                # SQLite, defaults
    .venv/bin/python benchmarks/load_server.py --postgres     # + a throwaway PostgreSQL cluster (Debian binaries)
    .venv/bin/python benchmarks/load_server.py --database-url postgresql://user@127.0.0.1:5432/db
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from edgeprune import __version__
from edgeprune.fsutil import write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "server_load.json"
_CLIENTS: list[httpx.Client] = []
APP, CHANNEL = "org.example.bench", "stable"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bundle(model_kb: int) -> bytes:
    """A valid bundle zip with ``model_kb`` KB of incompressible fake model bytes."""
    model = os.urandom(model_kb * 1024)
    labels = b"benign\nmalignant\n"
    doc = {
        "name": "bench", "version": "1.0.0", "created_at": "2025-01-01T00:00:00+00:00",
        "artifacts": [{"file": "model.tflite", "format": "tflite", "precision": "int8",
                       "sha256": hashlib.sha256(model).hexdigest(), "size_bytes": len(model)}],
        "preprocessing": {"input_size": [28, 28]}, "class_names": ["benign", "malignant"],
        "metrics": {"model.tflite": {"balanced_accuracy": 0.8}},
        "files": [{"path": "labels.txt", "sha256": hashlib.sha256(labels).hexdigest(), "size_bytes": len(labels)}],
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model.tflite", model)
        zf.writestr("labels.txt", labels)
        zf.writestr("model.json", json.dumps(doc))
    return buf.getvalue()


def _measurement(artifact_sha: str, i: int) -> dict[str, Any]:
    p50 = 5.0 + (i % 7)
    return {
        "id": uuid.uuid4().hex, "artifact_name": "model.tflite", "artifact_sha256": artifact_sha,
        "device": {"kind": "android-app", "id": f"bench-{i % 20}", "model": "bench-phone", "abi": "arm64-v8a"},
        "runtime": "litert", "threads": 4, "warmup": 5, "runs": 50,
        "latency": {"n": 50, "mean_ms": p50, "std_ms": 0.1, "min_ms": p50 - 1, "max_ms": p50 + 3, "p50_ms": p50,
                    "p90_ms": p50 + 1, "p99_ms": p50 + 2, "trimmed_mean_ms": p50},
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _run(name: str, clients: int, total: int, make_call: Any) -> dict[str, Any]:
    """``total`` calls spread over ``clients`` threads; each call returns {op: seconds}."""
    timings: dict[str, list[float]] = {}
    errors = 0
    lock = threading.Lock()

    def worker(n: int) -> None:
        nonlocal errors
        call = make_call()
        for i in range(n):
            try:
                result = call(i)
            except Exception:  # counted, reported
                with lock:
                    errors += 1
                continue
            with lock:
                for op, seconds in result.items():
                    timings.setdefault(op, []).append(seconds)

    shares = [total // clients + (1 if c < total % clients else 0) for c in range(clients)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, shares))
    elapsed = time.perf_counter() - start
    ops = {op: {"requests": len(v), "requests_per_s": round(len(v) / elapsed, 1),
                "p50_ms": round(1000 * statistics.median(v), 2), "p99_ms": round(1000 * _percentile(v, 99), 2)}
           for op, v in timings.items()}
    return {"phase": name, "clients": clients, "iterations": total, "elapsed_s": round(elapsed, 3),
            "iterations_per_s": round(total / elapsed, 1), "errors": errors, "ops": ops}


def _start_server(database_url: str, data_dir: Path, admin: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPRUNE_")}
    env.update(EDGEPRUNE_PORT=str(port), EDGEPRUNE_HOST="127.0.0.1", EDGEPRUNE_DATA_DIR=str(data_dir),
               EDGEPRUNE_ADMIN_KEY=admin, EDGEPRUNE_LOG_LEVEL="warning",
               # one bench key sends far more than a phone: per-key rate limit and daily quota off
               EDGEPRUNE_RATE_LIMIT_PER_MINUTE="0", EDGEPRUNE_MEASUREMENT_QUOTA_PER_DAY="0",
               EDGEPRUNE_MEASUREMENT_QUOTA_MB_PER_DAY="0")
    if database_url:
        env["EDGEPRUNE_DATABASE_URL"] = database_url
    proc = subprocess.Popen([sys.executable, "-m", "edgeprune.server"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not become healthy within 60 s")


def bench(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    """All phases against one freshly started server; ``database_url`` empty = SQLite."""
    admin = "bench-admin-" + secrets.token_hex(16)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    bundle = _bundle(args.bundle_kb)
    sha = hashlib.sha256(bundle).hexdigest()
    with tempfile.TemporaryDirectory(prefix="edgeprune-load-") as tmp:
        proc = _start_server(database_url, Path(tmp) / "data", admin, port)
        try:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=60) as http:
                http.post("/api/v1/bundles", data={"sha256": sha, "app_id": APP, "channel": CHANNEL},
                          files={"file": ("b.zip", bundle, "application/zip")}).raise_for_status()
                device = http.post("/api/v1/keys", json={"scope": "device", "label": "bench", "app_id": APP}).json()["key"]
                artifact = http.get("/api/v1/bundles").json()[0]["artifacts"][0]["sha256"]
            auth = {"Authorization": f"Bearer {device}"}
            current = f"/api/v1/apps/{APP}/channels/{CHANNEL}/current"

            def delivery() -> Any:
                http = httpx.Client(base_url=base, headers=auth, timeout=60)
                _CLIENTS.append(http)

                def call(_: int) -> dict[str, float]:
                    t0 = time.perf_counter()
                    meta = http.get(current, params={"abi": "arm64-v8a"})
                    meta.raise_for_status()
                    t1 = time.perf_counter()
                    body = http.get(meta.json()["download_url"])
                    body.raise_for_status()
                    t2 = time.perf_counter()
                    if hashlib.sha256(body.content).hexdigest() != sha:
                        raise RuntimeError("downloaded bytes do not match")
                    return {"current": t1 - t0, "download": t2 - t1, "delivery_cycle": t2 - t0}
                return call

            def conditional() -> Any:
                http = httpx.Client(base_url=base, headers={**auth, "If-None-Match": f'"{sha}"'}, timeout=60)
                _CLIENTS.append(http)

                def call(_: int) -> dict[str, float]:
                    t0 = time.perf_counter()
                    if http.get(current).status_code != 304:
                        raise RuntimeError("expected 304")
                    return {"current_304": time.perf_counter() - t0}
                return call

            def upload() -> Any:
                http = httpx.Client(base_url=base, headers=auth, timeout=60)
                _CLIENTS.append(http)

                def call(i: int) -> dict[str, float]:
                    t0 = time.perf_counter()
                    if http.post("/api/v1/measurements", json=_measurement(artifact, i)).status_code != 201:
                        raise RuntimeError("measurement not created")
                    return {"measurement_post": time.perf_counter() - t0}
                return call

            for make in (delivery, conditional, upload):  # warm-up, not recorded
                _run("warmup", args.clients, args.clients * 3, make)
            phases = [_run("delivery", args.clients, args.deliveries, delivery),
                      _run("conditional_get", args.clients, args.conditional, conditional),
                      _run("measurement_upload", args.clients, args.measurements, upload)]
        finally:
            for client in _CLIENTS:
                client.close()
            _CLIENTS.clear()
            proc.terminate()
            proc.wait(timeout=30)
    return {"database": "postgresql" if database_url else "sqlite", "bundle_bytes": len(bundle),
            "phases": phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--deliveries", type=int, default=300, help="current+download cycles")
    parser.add_argument("--conditional", type=int, default=600, help="current requests answered 304")
    parser.add_argument("--measurements", type=int, default=1000)
    parser.add_argument("--bundle-kb", type=int, default=512)
    parser.add_argument("--database-url", default="", help="a loopback PostgreSQL URL instead of SQLite")
    parser.add_argument("--postgres", action="store_true",
                        help="also run against a throwaway PostgreSQL cluster (Debian postgresql binaries)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.database_url and not any(h in args.database_url for h in ("@127.0.0.1", "@localhost", "@[::1]")):
        raise SystemExit("--database-url must point at 127.0.0.1/localhost (this benchmark stays on loopback)")

    runs = [bench(args, args.database_url)]
    if args.postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.server._pg import ThrowawayPostgres

        with ThrowawayPostgres() as pg:
            runs.append(bench(args, pg.create_database("edgeprune_load")))

    report = {
        "tool": "benchmarks/load_server.py", "edgeprune": __version__,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"python": platform.python_version(), "cpus": os.cpu_count(),
                 "loadavg_1m_at_end": round(os.getloadavg()[0], 2), "machine": platform.machine()},
        "server": "uvicorn (h11), one process, 127.0.0.1; clients: httpx threads in another process",
        "runs": runs,
    }
    for run in runs:
        print(f"== {run['database']} (bundle {run['bundle_bytes']} bytes)")
        for phase in run["phases"]:
            print(f"{phase['phase']:20} {phase['iterations']:5} iterations, {phase['clients']} clients, "
                  f"{phase['elapsed_s']:.2f}s, errors {phase['errors']}")
            for op, st in phase["ops"].items():
                print(f"    {op:18} {st['requests_per_s']:8.1f} req/s   p50 {st['p50_ms']:7.2f} ms   "
                      f"p99 {st['p99_ms']:7.2f} ms")
    write_json_atomic(args.out, report)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
