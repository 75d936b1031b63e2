"""Find the bundle to publish: a bundle .zip, an unzipped bundle directory, or a run directory holding one."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import atomic_path
from edgeprune.server.bundlezip import MODEL_JSON

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # deterministic zips: same files -> same sha256


def zip_directory(src: Path, dest: Path) -> Path:
    """Zip ``src`` (which holds model.json at its top) reproducibly into ``dest``."""
    files = sorted(p for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(src).as_posix(), date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return dest


def _is_bundle_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return MODEL_JSON in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def locate_bundle(path: Path, workdir: Path) -> Path:
    """The bundle zip to upload for ``path``; directories are zipped into ``workdir``."""
    path = Path(path)
    if not path.exists():
        raise EdgepruneError(f"{path} does not exist", "pass a run directory, a bundle directory or a bundle .zip")
    if path.is_file():
        if not _is_bundle_zip(path):
            raise EdgepruneError(f"{path} is not a bundle zip (no model.json at its root)",
                                 "pass the .zip written by the package stage")
        return path
    if (path / MODEL_JSON).is_file():
        return zip_directory(path, workdir / f"{path.name}.zip")
    zips = sorted(p for p in path.rglob("*.zip") if _is_bundle_zip(p))
    if len(zips) == 1:
        return zips[0]
    if len(zips) > 1:
        names = ", ".join(os.fspath(z.relative_to(path)) for z in zips[:5])
        raise EdgepruneError(f"{path} holds several bundle zips ({names})", "pass the one to publish")
    dirs = sorted(p.parent for p in path.rglob(MODEL_JSON))
    if len(dirs) == 1:
        return zip_directory(dirs[0], workdir / f"{dirs[0].name}.zip")
    if len(dirs) > 1:
        raise EdgepruneError(f"{path} holds several bundle directories", "pass the one to publish")
    raise EdgepruneError(f"no bundle (model.json) found under {path}",
                         "run the package stage first, or pass the bundle .zip")
