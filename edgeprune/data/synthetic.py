"""A seeded, synthetic fundus-like image set (NOT medical data) used as the built-in default dataset.

Each 32x32 RGB image shows a dark background, an orange-red disc with uneven illumination, a bright optic
disc, dark-red vessels and, depending on the grade (0..4), red microaneurysm-like dots, larger red blots,
yellow exudate-like dots and (grade 4) tortuous new-vessel tufts. Lesion counts overlap between neighbouring
grades and every grade also carries harmless look-alikes (pigment specks, dust), so the task is learnable
but not trivial. Pure numpy; Pillow only writes the PNGs.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgeprune.fsutil import atomic_path, read_json, write_json_atomic

# version 2: same drawing as version 1 (an image depends only on seed, split, grade and index, so version 1's
# files are a per-class prefix of version 2's), larger val and test splits so that the default gate can certify
GENERATOR_VERSION = 2
MANIFEST = "manifest.json"
CLASS_NAMES = [f"grade-{g}" for g in range(5)]
# train keeps version 1's size and imbalance (the task is as hard as before); val (search, early stopping) and
# test (the gate's one verdict) hold >= 50 and >= 100 images of the rare grade so that a per-class limit of
# 15 pp on the upper bound of a paired-bootstrap interval can be certified (see calib_data/README.md)
DEFAULT_COUNTS: dict[str, list[int]] = {
    "train": [400, 110, 170, 150, 60],
    "val": [350, 95, 150, 130, 50],
    "test": [700, 190, 300, 260, 100],
}
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_SS = 2  # render at 2x and average down, for soft (anti-aliased) edges
# lesion count ranges per grade (inclusive): microaneurysm dots, exudates, blots, new-vessel tufts
_LESIONS = {
    0: {"ma": (0, 0), "ex": (0, 0), "blot": (0, 0), "neo": (0, 0)},
    1: {"ma": (1, 3), "ex": (0, 0), "blot": (0, 0), "neo": (0, 0)},
    2: {"ma": (2, 6), "ex": (0, 3), "blot": (0, 1), "neo": (0, 0)},
    3: {"ma": (4, 9), "ex": (2, 6), "blot": (1, 3), "neo": (0, 0)},
    4: {"ma": (6, 12), "ex": (3, 8), "blot": (2, 5), "neo": (1, 2)},
}


def _blend(img: np.ndarray, mask: np.ndarray, color: np.ndarray, alpha: float) -> None:
    m = (np.clip(mask, 0.0, 1.0) * alpha)[..., None]
    img *= 1.0 - m
    img += m * color


def _spot(xx: np.ndarray, yy: np.ndarray, x: float, y: float, sigma: float, stretch: float = 1.0,
          angle: float = 0.0) -> np.ndarray:
    dx, dy = xx - x, yy - y
    c, s = np.cos(angle), np.sin(angle)
    u, v = (c * dx + s * dy) / stretch, -s * dx + c * dy
    return np.exp(-(u * u + v * v) / (2.0 * sigma * sigma))


def _curve(rng: np.random.Generator, start: np.ndarray, angle: float, bend: float, length: float,
           wiggle: float, step: float = 0.02) -> np.ndarray:
    pts, p = [start], start.copy()
    for _ in range(int(length / step)):
        angle += bend * step + rng.normal(0.0, wiggle)
        p = p + step * np.array([np.cos(angle), np.sin(angle)])
        pts.append(p)
    return np.array(pts)


def _stroke(xx: np.ndarray, yy: np.ndarray, pts: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """Soft line through ``pts`` whose width tapers from w0 to w1."""
    widths = np.linspace(w0, w1, len(pts))[:, None]
    d2 = (xx.reshape(1, -1) - pts[:, :1]) ** 2 + (yy.reshape(1, -1) - pts[:, 1:]) ** 2
    return np.exp(-(d2 / (2.0 * widths**2)).min(axis=0)).reshape(xx.shape)


def _place(rng: np.random.Generator, radius: float, center: np.ndarray, disc: np.ndarray, disc_r: float) -> np.ndarray:
    for _ in range(50):
        r, t = radius * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        p = center + r * np.array([np.cos(t), np.sin(t)])
        if np.hypot(*(p - disc)) > disc_r + 0.06:
            return p
    return p


def render_fundus(rng: np.random.Generator, grade: int, size: int = 32) -> np.ndarray:
    """One synthetic fundus-like image of the given grade as uint8 (size, size, 3)."""
    n = size * _SS
    coords = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    xx, yy = np.meshgrid(coords, coords)
    side = 1.0 if rng.random() < 0.5 else -1.0  # left or right eye
    center = rng.uniform(-0.06, 0.06, 2)
    radius = rng.uniform(0.84, 0.96)
    bright = rng.uniform(0.7, 1.15)
    r = np.hypot(xx - center[0], yy - center[1])

    base = np.array([rng.uniform(0.72, 0.9), rng.uniform(0.28, 0.42), rng.uniform(0.08, 0.18)])
    shade = 1.0 - rng.uniform(0.25, 0.5) * (r / radius) ** 2
    for _ in range(3):  # low-frequency choroidal texture
        k, ph, amp = rng.uniform(2, 6, 2), rng.uniform(0, 2 * np.pi), rng.uniform(0.01, 0.04)
        shade += amp * np.cos(k[0] * xx + k[1] * yy + ph)
    img = (shade[..., None] * base * bright).astype(np.float64)

    disc = np.array([side * rng.uniform(0.38, 0.52), rng.uniform(-0.12, 0.12)])
    disc_r = rng.uniform(0.11, 0.16)
    macula = np.array([disc[0] - side * rng.uniform(0.5, 0.65), disc[1] + rng.uniform(-0.08, 0.08)])
    img *= 1.0 - rng.uniform(0.1, 0.3) * _spot(xx, yy, *macula, sigma=0.12)[..., None]

    vessel = np.array([0.42, 0.07, 0.05]) * bright
    toward_macula, away = (np.pi, 0.0) if side > 0 else (0.0, np.pi)
    specs = [  # (heading, bend, length, start width): two arcades curving round the macula, then branches
        (vert * np.pi / 2 + rng.uniform(-0.3, 0.3), side * vert * rng.uniform(0.9, 1.4), rng.uniform(1.0, 1.5),
         rng.uniform(0.034, 0.044)) for vert in (-1.0, 1.0)
    ]
    for _ in range(rng.integers(2, 5)):
        head = (toward_macula if rng.random() < 0.4 else away) + rng.uniform(-0.9, 0.9)
        specs.append((head, rng.uniform(-1.0, 1.0), rng.uniform(0.35, 0.8), rng.uniform(0.022, 0.03)))
    for head, bend, length, width in specs:
        pts = _curve(rng, disc + rng.normal(0, 0.02, 2), head, bend, length, wiggle=0.05)
        _blend(img, _stroke(xx, yy, pts, width, 0.016), vessel, rng.uniform(0.55, 0.8))
    cup = _spot(xx, yy, *disc, sigma=disc_r * 0.75) ** 0.5
    _blend(img, cup, np.array([1.0, 0.88, 0.62]) * min(bright * 1.1, 1.0), rng.uniform(0.75, 0.95))

    lesions = {key: int(rng.integers(lo, hi + 1)) for key, (lo, hi) in _LESIONS[grade].items()}
    inner = radius * 0.8
    for _ in range(lesions["neo"]):
        pts = _curve(rng, disc + rng.normal(0, 0.05, 2), rng.uniform(0, 2 * np.pi), 0.0, 0.35, wiggle=0.7)
        _blend(img, _stroke(xx, yy, pts, 0.018, 0.014), vessel * 1.2, rng.uniform(0.5, 0.8))
    for _ in range(lesions["blot"]):
        p = _place(rng, inner, center, disc, disc_r)
        spot = _spot(xx, yy, *p, sigma=rng.uniform(0.06, 0.1), stretch=rng.uniform(1.0, 1.8),
                     angle=rng.uniform(0, np.pi))
        _blend(img, spot * 1.6, np.array([0.4, 0.04, 0.04]) * bright, rng.uniform(0.6, 0.9))
    for _ in range(lesions["ma"]):
        p = _place(rng, inner, center, disc, disc_r)
        _blend(img, _spot(xx, yy, *p, sigma=rng.uniform(0.03, 0.045)) * 1.5, np.array([0.45, 0.03, 0.03]) * bright,
               rng.uniform(0.6, 0.95))
    cluster = _place(rng, inner * 0.8, center, disc, disc_r)
    for _ in range(lesions["ex"]):
        p = cluster + rng.normal(0, 0.15, 2) if rng.random() < 0.7 else _place(rng, inner, center, disc, disc_r)
        _blend(img, _spot(xx, yy, *p, sigma=rng.uniform(0.03, 0.055)) * 1.5, np.array([1.0, 0.92, 0.4]),
               rng.uniform(0.6, 0.95))
    for _ in range(rng.poisson(0.8)):  # look-alikes present at every grade
        p = _place(rng, inner, center, disc, disc_r)
        pigment = rng.random() < 0.5
        color = np.array([0.35, 0.18, 0.08]) * bright if pigment else np.array([0.92, 0.86, 0.8])
        _blend(img, _spot(xx, yy, *p, sigma=rng.uniform(0.045, 0.07)), color, rng.uniform(0.25, 0.45))

    edge = np.clip((radius - r) / 0.04, 0.0, 1.0)[..., None]
    img = img * edge + 0.015 * (1.0 - edge)
    img += rng.normal(0.0, 0.012, img.shape)
    img = img.reshape(size, _SS, size, _SS, 3).mean(axis=(1, 3))
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def _png_bytes(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8)).save(buf, format="PNG", compress_level=9, optimize=False)
    return buf.getvalue()


def _contact_sheet(train_dir: Path, per_row: int = 8, zoom: int = 3) -> np.ndarray | None:
    """Up to ``per_row`` training images per grade, one grade per row, enlarged for viewing."""
    from PIL import Image

    rows = []
    for name in CLASS_NAMES:
        files = sorted((train_dir / name).glob("*.png"))[:per_row]
        if not files:
            continue
        tiles = [np.asarray(Image.open(f).convert("RGB")) for f in files]
        tiles += [np.zeros_like(tiles[0])] * (per_row - len(tiles))
        rows.append(np.concatenate(tiles, axis=1))
    if not rows:
        return None
    sheet = np.concatenate(rows, axis=0)
    return sheet.repeat(zoom, axis=0).repeat(zoom, axis=1)


def generate_fundus_synth(out_dir: str | Path, seed: int = 0, counts: dict[str, list[int]] | None = None,
                          size: int = 32) -> dict[str, list[int]]:
    """Write out_dir/{train,val,test}/grade-<g>/*.png, manifest.json and preview.png (train images per grade).

    The output is byte-identical for the same arguments. Every image has its own seed derived from (seed, split,
    grade, index), so a run with smaller counts produces a per-class prefix of a larger run. The folder is built
    aside and swapped in atomically.
    """
    counts = {s: list(map(int, c)) for s, c in (counts or DEFAULT_COUNTS).items()}
    for split, per_class in counts.items():
        if split not in _SPLIT_IDS or len(per_class) != len(CLASS_NAMES) or min(per_class) < 0:
            raise ValueError(f"counts must map train/val/test to {len(CLASS_NAMES)} non-negative ints, got {split}")
    with atomic_path(out_dir) as tmp:
        for split, per_class in counts.items():
            for grade, count in enumerate(per_class):
                folder = tmp / split / CLASS_NAMES[grade]
                folder.mkdir(parents=True)
                for i in range(count):
                    rng = np.random.default_rng([seed, _SPLIT_IDS[split], grade, i])
                    (folder / f"{split}-g{grade}-{i:04d}.png").write_bytes(_png_bytes(render_fundus(rng, grade, size)))
        sheet = _contact_sheet(tmp / "train")
        if sheet is not None:
            (tmp / "preview.png").write_bytes(_png_bytes(sheet))
        write_json_atomic(tmp / MANIFEST, {
            "name": "fundus-synth",
            "synthetic": True,
            "note": "synthetic fundus-like images drawn by a program; not medical data, not for clinical use",
            "generator": "edgeprune.data.synthetic.generate_fundus_synth",
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "image_size": [size, size],
            "class_names": CLASS_NAMES,
            "counts": counts,
        })
    return counts


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeprune"


def _is_current(folder: Path, seed: int = 0) -> bool:
    try:
        meta = read_json(folder / MANIFEST)
    except (OSError, ValueError):
        return False
    return meta.get("generator_version") == GENERATOR_VERSION and meta.get("counts") == DEFAULT_COUNTS \
        and meta.get("seed") == seed


def repo_data_dir() -> Path:
    """calib_data/fundus-synth of a source checkout: not committed, present only after calib_data/generate.py."""
    return Path(__file__).resolve().parents[2] / "calib_data" / "fundus-synth"


def cache_data_dir() -> Path:
    """Where the default set is generated on first use (one folder per generator version)."""
    return _cache_root() / f"fundus-synth-v{GENERATOR_VERSION}"


def embedded_data_dir() -> Path:
    """The synthetic default set: a current copy in the checkout, else one generated once into the user cache.

    Generation takes about 20 s on one core. Concurrent first uses are safe: each process draws into its own
    temporary folder and only the first finished copy is moved into place (the others are discarded).
    """
    repo = repo_data_dir()
    if _is_current(repo):
        return repo
    cache = cache_data_dir()
    if not _is_current(cache):
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}.", suffix=".part", dir=cache.parent))
        try:
            generate_fundus_synth(tmp / "set", seed=0)
            if cache.exists() and not _is_current(cache):  # an older or broken copy: replace it
                shutil.rmtree(cache, ignore_errors=True)
            try:
                os.rename(tmp / "set", cache)
            except OSError:  # another process finished first
                if not _is_current(cache):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return cache
