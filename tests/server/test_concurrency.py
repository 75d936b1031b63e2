"""50 client threads post 1,000 measurements (plus deliberate retries) through a real uvicorn server."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from edgeprune.server.models import MeasurementRow
from tests.server._helpers import measurement
from tests.server.conftest import LiveServer

CLIENTS, TOTAL = 50, 1000


def test_concurrent_posts_lose_nothing_and_store_no_duplicates(live_server: LiveServer) -> None:
    per_client = TOTAL // CLIENTS
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)

    def body_of(c: int, i: int) -> dict[str, object]:
        return measurement("d" * 64, device_id=f"dev{c}", p50=1 + i, mid=f"c{c}-m{i}")

    def worker(c: int) -> list[str]:
        sends: list[dict[str, object]] = []
        for i in range(per_client):
            sends.append(body_of(c, i))
            if i % 4 == 0:  # a retry, as an app sends after a timeout
                sends.append(body_of(c, i))
            if i % 10 == 0:  # the partner client posts the same measurement at about the same time
                sends.append(body_of(c ^ 1, i))
        with httpx.Client(base_url=live_server.url, headers=live_server.api.device, timeout=60) as http:
            barrier.wait()  # start together for maximum contention
            for body in sends:
                resp = http.post("/api/v1/measurements", json=body)
                with lock:
                    statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        return [f"c{c}-m{i}" for i in range(per_client)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        sent_ids = [i for ids in pool.map(worker, range(CLIENTS)) for i in ids]

    assert len(sent_ids) == TOTAL == len(set(sent_ids))
    assert statuses.get(201) == TOTAL, statuses  # each measurement created exactly once
    assert set(statuses) == {200, 201}, statuses  # every retry answered "already stored"
    db = live_server.api.app.state.edgeprune.db
    with db.read() as s:
        stored = s.scalars(select(MeasurementRow.id)).all()
        assert s.scalar(select(func.count()).select_from(MeasurementRow)) == TOTAL
    assert sorted(stored) == sorted(sent_ids)  # nothing lost, nothing duplicated
    with httpx.Client(base_url=live_server.url, headers=live_server.api.admin) as http:
        listed = http.get("/api/v1/measurements", params={"limit": 1000}).json()
    assert len({m["id"] for m in listed}) == TOTAL
