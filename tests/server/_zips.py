"""Hand-built hostile zips: every header field is ours, so the tests can lie where real tools never would."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from tests.server._helpers import model_json

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")
ZERO_PIECE = 16 << 20  # 16 MiB of zeros per repeated deflate piece


@dataclass
class RawEntry:
    name: str  # the central-directory name
    data: bytes  # the bytes as stored in the zip (already deflated when method == 8)
    crc: int
    size: int  # the uncompressed size the headers declare
    method: int = 8
    local_name: str | None = None  # a different name in the local header
    hidden_before: bytes = b""  # bytes before the local header that the central directory does not list

    @property
    def flags(self) -> int:
        return 0x800  # names are UTF-8


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def entry(name: str, content: bytes, *, method: int = 8, **kw: Any) -> RawEntry:
    """An honest entry (unless ``kw`` overrides a field)."""
    stored = deflate(content) if method == 8 else content
    fields = {"crc": zlib.crc32(content), "size": len(content), **kw}
    return RawEntry(name=name, data=stored, method=method, **fields)


def local_only(name: str, content: bytes) -> bytes:
    """A local header + data with no central-directory entry: only a streaming unzipper would see it."""
    return build_zip([entry(name, content)]).split(b"PK\x01\x02")[0]


def build_zip(entries: list[RawEntry]) -> bytes:
    out, central = bytearray(), bytearray()
    for e in entries:
        out += e.hidden_before
        offset = len(out)
        local = (e.local_name if e.local_name is not None else e.name).encode()
        out += _LOCAL.pack(b"PK\x03\x04", 20, e.flags, e.method, 0, 0x21, e.crc, len(e.data), e.size, len(local), 0)
        out += local + e.data
        name = e.name.encode()
        central += _CENTRAL.pack(b"PK\x01\x02", 20, 20, e.flags, e.method, 0, 0x21, e.crc, len(e.data), e.size,
                                 len(name), 0, 0, 0, 0, 0o644 << 16, offset) + name
    cd_offset = len(out)
    out += central
    out += _END.pack(b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), cd_offset, 0)
    return bytes(out)


@functools.cache
def zero_bomb(pieces: int = 72) -> tuple[bytes, int, int]:
    """Raw deflate of ``pieces`` x 16 MiB of zeros (72 -> 1.2 GB) in about 1.2 MB, cheaply.

    After a full flush the compressor starts afresh on a byte boundary, so the compressed form of one
    piece can simply be repeated; an empty final block ends the stream. Returns (data, size, crc)."""
    zeros = bytes(ZERO_PIECE)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = 0
    for _ in range(pieces):
        crc = zlib.crc32(zeros, crc)
    return piece * pieces + final, pieces * ZERO_PIECE, crc


def bundle_entries(model_doc_override: dict[str, Any] | None = None) -> tuple[list[RawEntry], dict[str, Any]]:
    """The entries of a small valid bundle (model.json last), as RawEntry objects to add hostile ones to."""
    files = {"model.tflite": b"TFL3 hostile test model" * 8, "labels.txt": b"benign\nmalignant\n"}
    doc = {**model_json("hostile", "1.0.0", files), **(model_doc_override or {})}
    entries = [entry(name, data) for name, data in files.items()]
    return [*entries, entry("model.json", json.dumps(doc).encode())], doc


def sign(model_bytes: bytes, private_key: Any, **override: Any) -> bytes:
    """signature.json (format 1) for ``model_bytes``, as ``edgeprune package`` writes it."""
    from cryptography.hazmat.primitives import serialization

    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    doc = {"format": 1, "algorithm": "Ed25519", "key_id": hashlib.sha256(raw).hexdigest()[:16],
           "public_key": base64.b64encode(raw).decode(), "signed_file": "model.json",
           "signed_sha256": hashlib.sha256(model_bytes).hexdigest(),
           "signature": base64.b64encode(private_key.sign(model_bytes)).decode(), **override}
    return json.dumps(doc, indent=2).encode()
