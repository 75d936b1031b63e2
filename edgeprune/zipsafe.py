"""Read an untrusted zip safely: every entry is checked and inflated by us, whatever its headers claim.

Used by the server when a bundle is published and by ``edgeprune verify`` / ``publish`` on a bundle zip.
For every entry, listed in model.json or not:

* the name is a plain relative path (no NUL or control characters, backslash, drive, absolute path, ``.``
  or ``..`` component) and the local header names the same file as the central directory;
* it is not encrypted, not a symbolic link, stored or deflated (what phones can unzip), and does not
  overlap another entry;
* its real inflated size (counted while inflating, never taken from a header) stays under the per-entry
  and total limits and under a compression-ratio limit against zip bombs, and equals the size and CRC-32
  the headers declare.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 16
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_UNICODE_PATH_EXTRA = 0x7075  # an alternative name field: two names for one entry are refused
_DRIVE = re.compile(r"^[A-Za-z]:")
_UNSET = 0xFFFFFFFF
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}  # controls, bidi overrides, surrogates, private use, separators


@dataclass(frozen=True)
class ZipLimits:
    """Limits on what a zip may inflate to (bytes)."""

    max_total: int = 4 << 30
    max_entry: int = 2 << 30
    max_ratio: float = 100.0  # inflated/compressed, checked once an entry passes ratio_floor bytes
    ratio_floor: int = 1 << 20
    max_entries: int = 10_000


class ZipProblem(Exception):
    """The zip is unsafe or damaged. ``kind``: malformed | unsafe | too-large | bomb."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class ZipEntry:
    name: str
    size_bytes: int
    sha256: str
    is_dir: bool
    data: bytes | None = None  # only for entries the caller asked to keep


def unsafe_reason(name: str) -> str | None:
    """Why ``name`` is not a plain relative path inside the archive (``None`` when it is)."""
    if not name:
        return "empty name"
    if "\x00" in name:
        return "NUL byte in name"
    if any(unicodedata.category(c) in _INVISIBLE for c in name):
        return "control character in name (or an invisible formatting character such as a direction override)"
    if "\\" in name:
        return "backslash in name"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "'..', '.' or empty path component"
    return None


def _extra_ids(extra: bytes) -> set[int]:
    ids, i = set(), 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, i)
        ids.add(tag)
        i += 4 + size
    return ids


def _check_central(zf: zipfile.ZipFile, limits: ZipLimits) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise ZipProblem("too-large", f"the zip has {len(infos)} entries (at most {limits.max_entries})")
    seen: set[str] = set()
    declared = 0
    for info in infos:
        name = info.orig_filename
        reason = unsafe_reason(name)
        if reason:
            raise ZipProblem("unsafe", f"unsafe zip entry name {name!r}: {reason}")
        folded = name.casefold()
        if folded in seen:
            raise ZipProblem("unsafe", f"zip entry {name!r} appears twice (names differing only in case count)")
        seen.add(folded)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ZipProblem("unsafe", f"zip entry {name!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise ZipProblem("unsafe", f"zip entry {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ZipProblem("unsafe", f"zip entry {name!r} uses compression method {info.compress_type} "
                                       "(only stored and deflated are accepted)")
        if _UNICODE_PATH_EXTRA in _extra_ids(info.extra):
            raise ZipProblem("unsafe", f"zip entry {name!r} carries a second (unicode path) name")
        if info.file_size > limits.max_entry:
            raise ZipProblem("too-large", f"zip entry {name!r} declares {info.file_size} bytes "
                                          f"(at most {limits.max_entry} per entry)")
        declared += info.file_size
        if declared > limits.max_total:
            raise ZipProblem("too-large", f"the zip contents exceed {limits.max_total} bytes uncompressed")
    return infos


def _local_header(fh: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Check the local header of ``info`` against the central directory; return where its data starts."""
    name = info.orig_filename
    fh.seek(info.header_offset)
    raw = fh.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size:
        raise ZipProblem("malformed", f"zip entry {name!r}: local header is cut off")
    _sig, _ver, flags, method, _t, _d, crc, csize, usize, name_len, extra_len = _LOCAL_HEADER.unpack(raw)
    if _sig != _LOCAL_SIGNATURE:
        raise ZipProblem("malformed", f"zip entry {name!r}: no local header where the central directory says")
    name_raw, extra = fh.read(name_len), fh.read(extra_len)
    if len(name_raw) != name_len or len(extra) != extra_len:
        raise ZipProblem("malformed", f"zip entry {name!r}: local header is cut off")
    local_name = name_raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
    if local_name != name:
        raise ZipProblem("unsafe", f"zip entry {name!r} is named {local_name!r} in its local header "
                                   "(the two names must agree)")
    if _UNICODE_PATH_EXTRA in _extra_ids(extra):
        raise ZipProblem("unsafe", f"zip entry {name!r} carries a second (unicode path) name")
    if method != info.compress_type or flags & 0x1:
        raise ZipProblem("unsafe", f"zip entry {name!r}: local header and central directory disagree on method")
    if not flags & 0x8:  # no data descriptor: the local header's CRC and sizes must be the directory's
        sizes_ok = (csize, usize) == (info.compress_size, info.file_size) or _UNSET in (csize, usize)
        if crc != info.CRC or not sizes_ok:
            raise ZipProblem("unsafe", f"zip entry {name!r}: local header and central directory disagree on "
                                       "size or CRC")
    return info.header_offset + _LOCAL_HEADER.size + name_len + extra_len


def _check_layout(fh: BinaryIO, infos: list[zipfile.ZipInfo], end_of_data: int) -> dict[str, int]:
    """Data offsets of every entry. Entries must tile the file from byte 0 to the central directory: no
    overlap and no hidden bytes a streaming unzipper (which reads local headers in order) would see."""
    starts = {info.orig_filename: _local_header(fh, info) for info in infos}
    ordered = sorted(infos, key=lambda i: i.header_offset)
    position = 0
    for info in ordered:
        if info.header_offset != position:
            what = "overlaps the previous one" if info.header_offset < position else "follows unlisted bytes"
            raise ZipProblem("unsafe", f"zip entry {info.orig_filename!r} {what} (hidden or overlapping data)")
        position = starts[info.orig_filename] + info.compress_size
        if info.flag_bits & 0x8:  # a data descriptor follows: optional signature, CRC, two sizes (4 or 8 bytes)
            position += _descriptor_length(fh, position)
    if position != end_of_data:
        raise ZipProblem("unsafe", "the zip holds bytes between its last entry and its central directory")
    return starts


def _descriptor_length(fh: BinaryIO, offset: int) -> int:
    fh.seek(offset)
    head = fh.read(4)
    signed = 4 if head == b"PK\x07\x08" else 0
    fh.seek(offset + signed + 12)
    after_short = fh.read(4)  # what follows a 32-bit descriptor: the next local header or the directory
    return signed + (12 if after_short in (b"PK\x03\x04", b"PK\x01\x02", b"PK\x06\x06") else 20)


class _Counter:
    """Running totals of one scan; raises as soon as a limit is passed."""

    def __init__(self, limits: ZipLimits) -> None:
        self.limits = limits
        self.total = 0

    def add(self, name: str, entry_size: int, compressed: int, n: int) -> None:
        self.total += n
        lim = self.limits
        if entry_size > lim.max_entry:
            raise ZipProblem("too-large", f"zip entry {name!r} inflates to more than {lim.max_entry} bytes")
        if self.total > lim.max_total:
            raise ZipProblem("too-large", f"the zip contents inflate to more than {lim.max_total} bytes")
        if entry_size > lim.ratio_floor and entry_size > lim.max_ratio * max(compressed, 1):
            raise ZipProblem("bomb", f"zip entry {name!r} inflates more than {lim.max_ratio:g} times its "
                                     "compressed size: refused as a zip bomb")


def _inflate(fh: BinaryIO, info: zipfile.ZipInfo, start: int, counter: _Counter,
             out: Callable[[bytes], None]) -> int:
    """Stream the entry's real content to ``out``; return its real size (never read from a header)."""
    name, left = info.orig_filename, info.compress_size
    fh.seek(start)
    inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    size = 0

    def emit(piece: bytes) -> None:
        nonlocal size
        size += len(piece)
        counter.add(name, size, info.compress_size - left, len(piece))  # ratio against what was read so far
        out(piece)

    while left:
        block = fh.read(min(CHUNK, left))
        if not block:
            raise ZipProblem("malformed", f"zip entry {name!r} is cut off")
        left -= len(block)
        if inflater is None:
            emit(block)
            continue
        pending = block
        try:
            while not inflater.eof:  # bounded steps: memory stays small whatever the ratio
                piece = inflater.decompress(pending, CHUNK)
                pending = inflater.unconsumed_tail
                emit(piece)
                if not pending and len(piece) < CHUNK:
                    break
        except zlib.error as exc:
            raise ZipProblem("malformed", f"zip entry {name!r} is damaged: {exc}") from exc
        if inflater.eof and (inflater.unused_data or pending or left):
            raise ZipProblem("malformed", f"zip entry {name!r} has data after the end of its stream")
    if inflater is not None and not inflater.eof and info.compress_size:
        raise ZipProblem("malformed", f"zip entry {name!r} is truncated (its compressed stream does not end)")
    return size


def scan_zip(path: str | Path, limits: ZipLimits, keep: dict[str, int] | None = None,
             extract_to: Path | None = None) -> dict[str, ZipEntry]:
    """Check every entry of the zip at ``path`` (see the module doc); raise :class:`ZipProblem`.

    ``keep``: ``{name: max bytes}`` of entries whose bytes are returned in :attr:`ZipEntry.data`.
    ``extract_to``: write the checked content there (an empty directory), so what is extracted is exactly
    what was checked."""
    try:
        with open(path, "rb") as fh, zipfile.ZipFile(fh) as zf:
            infos = _check_central(zf, limits)
            starts = _check_layout(fh, infos, zf.start_dir)
            counter = _Counter(limits)
            entries: dict[str, ZipEntry] = {}
            for info in infos:
                entries[info.orig_filename] = _scan_entry(fh, info, starts[info.orig_filename], counter,
                                                          (keep or {}).get(info.orig_filename), extract_to)
            return entries
    except zipfile.BadZipFile as exc:
        raise ZipProblem("malformed", f"not a valid zip file: {exc}") from exc
    except (OSError, EOFError, ValueError, struct.error, RuntimeError, NotImplementedError, OverflowError) as exc:
        raise ZipProblem("malformed", f"the zip file could not be read: {exc}") from exc


def _scan_entry(fh: BinaryIO, info: zipfile.ZipInfo, start: int, counter: _Counter,
                keep: int | None, extract_to: Path | None) -> ZipEntry:
    name = info.orig_filename
    is_dir = name.endswith("/")
    digest, crc = hashlib.sha256(), 0
    kept: list[bytes] | None = [] if keep is not None and not is_dir else None
    kept_size = 0
    sink = None
    if extract_to is not None:
        target = extract_to / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_dir:
            target.mkdir(exist_ok=True)
        else:
            sink = os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                                     0o644), "wb")

    def out(piece: bytes) -> None:
        nonlocal crc, kept_size
        digest.update(piece)
        crc = zlib.crc32(piece, crc)
        if kept is not None:
            kept_size += len(piece)
            if kept_size > (keep or 0):
                raise ZipProblem("too-large", f"{name} is larger than {keep} bytes")
            kept.append(piece)
        if sink is not None:
            sink.write(piece)

    try:
        size = _inflate(fh, info, start, counter, out)
    finally:
        if sink is not None:
            sink.close()
    if is_dir and size:
        raise ZipProblem("unsafe", f"zip directory entry {name!r} has content")
    if size != info.file_size:
        raise ZipProblem("malformed", f"zip entry {name!r} inflates to {size} bytes but its header says "
                                      f"{info.file_size}")
    if crc != info.CRC:
        raise ZipProblem("malformed", f"zip entry {name!r} fails its CRC-32 check (damaged)")
    return ZipEntry(name, size, digest.hexdigest(), is_dir, b"".join(kept) if kept is not None else None)
