"""edgeprune.artifacts: the one layout rule, file/directory hashing, and the format dispatcher."""

from __future__ import annotations

import hashlib

import pytest

from edgeprune.artifacts import artifact_digest, artifact_size, describe_artifact, image_layout
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file


@pytest.mark.parametrize(
    ("shape", "declared", "want"),
    [
        ([1, 3, 32, 32], None, "NCHW"),
        ([1, 32, 32, 3], None, "NHWC"),
        ([1, 1, 28, 28], "", "NCHW"),
        ([1, 3, 8, 3], None, ""),  # both axes look like channels: the runtime decides from the batch
        ([1, 8, 16, 16], None, ""),  # neither does
        ([1, 3, 8, 3], "NHWC", "NHWC"),  # what the export recorded wins
        ([1, 3, 32, 32], "NHWC", "NHWC"),
        ([1, 10], "NCHW", ""),  # not an image tensor
    ],
)
def test_one_layout_rule(shape, declared, want) -> None:
    assert image_layout(shape, declared) == want


def test_digest_and_size_of_file_and_package_directory(tmp_path) -> None:
    f = tmp_path / "m.tflite"
    f.write_bytes(b"abc")
    assert artifact_digest(f) == sha256_file(f) and artifact_size(f) == 3
    pkg = tmp_path / "m.mlpackage"
    (pkg / "Data").mkdir(parents=True)
    (pkg / "Manifest.json").write_bytes(b"{}")
    (pkg / "Data" / "w.bin").write_bytes(b"12345")
    before = artifact_digest(pkg)
    assert artifact_size(pkg) == 7 and len(before) == 64 and before != hashlib.sha256(b"").hexdigest()
    (pkg / "Data" / "w.bin").write_bytes(b"12346")
    assert artifact_digest(pkg) != before  # content counts
    (pkg / "Data" / "w.bin").rename(pkg / "Data" / "v.bin")
    assert artifact_digest(pkg) != before  # names count too


def test_unknown_format_is_one_line_error(tmp_path) -> None:
    with pytest.raises(EdgepruneError, match="cannot read 'tensorrt' files"):
        describe_artifact(tmp_path / "m.plan", "tensorrt")
