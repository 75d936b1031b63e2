"""A small synchronous client for the edgeprune server (used by ``edgeprune publish`` and the tests)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file
from edgeprune.optional import require
from edgeprune.schemas import Measurement
from edgeprune.server.bundlezip import BundleRejected, inspect_bundle
from edgeprune.server.publishing import locate_bundle


class ServerError(EdgepruneError):
    """The server answered with an error status."""

    def __init__(self, status: int, detail: str, fix: str | None = None) -> None:
        super().__init__(f"server answered {status}: {detail}", fix)
        self.status = status
        self.detail = detail


_FIXES = {401: "pass a valid key with --api-key or EDGEPRUNE_API_KEY",
          403: "this needs an admin key (`edgeprune keys create --scope admin`)",
          413: "the server's size limit is too small (EDGEPRUNE_MAX_BUNDLE_MB) or the file is wrong"}


class EdgepruneClient:
    """``EdgepruneClient("http://127.0.0.1:8000", api_key)``; all methods raise :class:`ServerError`."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 60.0,
                 http: Any = None) -> None:
        """``http``: an existing ``httpx.Client`` (e.g. FastAPI's TestClient) to send requests through."""
        httpx = require("httpx", "server")
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._httpx = httpx

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> EdgepruneClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # plumbing -------------------------------------------------------------------------------------------
    def _request(self, method: str, url: str, ok: tuple[int, ...] = (200,), **kw: Any) -> Any:
        kw["headers"] = {**self._auth, **(kw.get("headers") or {})}
        try:
            resp = self._http.request(method, url, **kw)
        except self._httpx.HTTPError as exc:
            raise EdgepruneError(f"cannot reach the server at {self._http.base_url}: {exc}",
                                 "check --server and that `edgeprune serve` is running") from exc
        if resp.status_code not in ok:
            try:
                body = resp.json()
                detail = body.get("message") or body.get("detail") or resp.text
            except ValueError:
                detail = resp.text
            raise ServerError(resp.status_code, str(detail)[:500], _FIXES.get(resp.status_code))
        return resp

    # API ------------------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return dict(self._request("GET", "/healthz").json())

    def upload_bundle(self, zip_path: Path, app_id: str | None = None, channel: str | None = None) -> dict[str, Any]:
        """Upload one bundle zip (sha256 computed here and checked by the server)."""
        data = {"sha256": sha256_file(zip_path)}
        if app_id:
            data["app_id"] = app_id
        if channel:
            data["channel"] = channel
        with open(zip_path, "rb") as fh:
            files = {"file": (Path(zip_path).name, fh, "application/zip")}
            resp = self._request("POST", "/api/v1/bundles", ok=(200, 201), data=data, files=files)
        return dict(resp.json())

    def publish(self, path: Path, app_id: str, channel: str | None = None) -> dict[str, Any]:
        """Find the bundle under ``path``, check it locally like the server will, and upload it."""
        with tempfile.TemporaryDirectory(prefix="edgeprune-publish-") as work:
            zip_path = locate_bundle(Path(path), Path(work))
            try:
                inspect_bundle(zip_path, max_uncompressed=1 << 40)
            except BundleRejected as exc:  # checked here first: nothing is uploaded
                raise EdgepruneError(f"{zip_path} is not a valid bundle: {exc.message}",
                                     "re-create it with 'edgeprune package' (nothing was uploaded)") from exc
            return self.upload_bundle(zip_path, app_id, channel)

    def set_channel(self, app_id: str, channel: str, bundle_sha256: str) -> dict[str, Any]:
        resp = self._request("PUT", f"/api/v1/apps/{app_id}/channels/{channel}",
                             json={"bundle_sha256": bundle_sha256})
        return dict(resp.json())

    def channel_history(self, app_id: str, channel: str) -> list[dict[str, Any]]:
        return list(self._request("GET", f"/api/v1/apps/{app_id}/channels/{channel}/history").json())

    def current(self, app_id: str, channel: str, abi: str = "", etag: str | None = None) -> dict[str, Any] | None:
        """The channel's current model, or ``None`` when ``etag`` is still current (304)."""
        headers = {"If-None-Match": etag} if etag else {}
        resp = self._request("GET", f"/api/v1/apps/{app_id}/channels/{channel}/current", ok=(200, 304),
                             params={"abi": abi} if abi else None, headers=headers)
        return None if resp.status_code == 304 else dict(resp.json())

    def download(self, bundle_sha256: str, dest: Path, chunk: int = 1 << 20) -> Path:
        """Download a bundle to ``dest``, resuming a previous ``dest.part``; verified before it is renamed."""
        dest = Path(dest)
        part = dest.with_name(dest.name + ".part")
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-", "If-Range": f'"{bundle_sha256}"'} if have else {}
        url = f"/api/v1/bundles/{bundle_sha256}/download"
        try:
            with self._http.stream("GET", url, headers={**self._auth, **headers}) as resp:
                if resp.status_code == 416 and have:  # the partial file is already complete
                    resp.read()
                elif resp.status_code not in (200, 206):
                    resp.read()
                    self._request("GET", url)  # raises with the server's message
                else:
                    with open(part, "ab" if resp.status_code == 206 else "wb") as out:
                        for block in resp.iter_bytes(chunk):
                            out.write(block)
        except self._httpx.HTTPError as exc:
            raise EdgepruneError(f"download of {bundle_sha256} interrupted: {exc}",
                                 "run it again to resume") from exc
        if sha256_file(part) != bundle_sha256:
            part.unlink()
            raise EdgepruneError(f"downloaded bundle does not match sha256 {bundle_sha256}", "download it again")
        os.replace(part, dest)
        return dest

    def post_measurement(self, measurement: Measurement | dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Post one measurement; returns (201 created | 200 already stored, stored record)."""
        body = measurement.model_dump(mode="json") if isinstance(measurement, Measurement) else measurement
        resp = self._request("POST", "/api/v1/measurements", ok=(200, 201), json=body)
        return resp.status_code, dict(resp.json())

    def measurements(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}
        return list(self._request("GET", "/api/v1/measurements", params=params).json())

    def bundles(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/api/v1/bundles").json())

    def create_key(self, scope: str, label: str = "", app_id: str | None = None,
                   expires_in_days: float | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"scope": scope, "label": label}
        if app_id:
            body["app_id"] = app_id
        if expires_in_days:
            body["expires_in_days"] = expires_in_days
        return dict(self._request("POST", "/api/v1/keys", ok=(201,), json=body).json())
