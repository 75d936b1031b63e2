"""The ssh device against a real OpenSSH sshd started on a loopback port with throw-away keys."""

from __future__ import annotations

import glob
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeprune.devices import BenchSpec, SshDevice, open_device
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file
from edgeprune.schemas import Measurement
from tests.devices.fake_adb import free_port


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    missing = [t for t in ("ssh", "scp", "ssh-keygen") if not shutil.which(t)]
    if not Path(sshd_bin).exists() or missing:
        pytest.skip(f"OpenSSH not installed ({'sshd' if not Path(sshd_bin).exists() else ', '.join(missing)}): "
                    "apt-get install openssh-server openssh-client")  # fmt: skip
    d = tmp_path_factory.mktemp("sshd")
    _keygen(d / "host_key")
    _keygen(d / "user_key")
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "Subsystem sftp internal-sftp\nLogLevel VERBOSE\n"
    )  # fmt: skip
    try:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    except OSError as exc:
        pytest.skip(f"sshd cannot run here: cannot create /run/sshd ({exc})")
    check = subprocess.run([sshd_bin, "-t", "-f", str(d / "sshd_config")], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip(f"sshd cannot run here: {check.stderr.strip()[-300:]}")
    log = open(d / "sshd.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    else:
        proc.kill()
    if proc.poll() is not None:
        log.close()
        pytest.skip(f"sshd cannot run here: {(d / 'sshd.log').read_text()[-300:]}")
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (d / "empty_known_hosts").write_text("")
    try:
        yield {"port": str(port), "key": str(d / "user_key"), "known_hosts": str(d / "known_hosts"),
               "empty_known_hosts": str(d / "empty_known_hosts"), "log": str(d / "sshd.log")}  # fmt: skip
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _spec(
    sshd: dict[str, str], python: str = sys.executable, known_hosts: str | None = None, port: str | None = None
) -> str:
    return (f"ssh:root@127.0.0.1:{port or sshd['port']}?python={python}&identity={sshd['key']}"
            f"&known_hosts={known_hosts or sshd['known_hosts']}&timeout=300")  # fmt: skip


def test_fingerprint_over_ssh(sshd: dict[str, str]) -> None:
    dev = open_device(_spec(sshd))
    assert isinstance(dev, SshDevice)
    fp = dev.fingerprint()
    assert fp.kind == "ssh" and fp.id == f"root@127.0.0.1:{sshd['port']}"
    assert fp.abi == platform.machine() and fp.cores == os.cpu_count()
    assert fp.model_extra["python"] == platform.python_version()
    assert fp.model_extra["remote_ai_edge_litert"] not in (None, "")


def test_benchmark_over_ssh(sshd: dict[str, str], tiny_model: Path) -> None:
    before = set(glob.glob("/tmp/edgeprune.*"))
    sha = sha256_file(tiny_model)
    ms = open_device(_spec(sshd)).benchmark(tiny_model, BenchSpec(threads=[1, 2], warmup=1, runs=5), "tiny", sha)
    assert [m.threads for m in ms] == [1, 2]
    for m in ms:
        assert Measurement.model_validate_json(m.model_dump_json()) == m
        assert m.device.kind == "ssh" and m.timing_meaningful and m.artifact_sha256 == sha
        assert m.runtime.startswith("ai-edge-litert ") and m.delegate == "xnnpack"
        assert m.latency is not None and m.latency.n == 5
        assert 0 < m.latency.min_ms <= m.latency.p50_ms <= m.latency.max_ms
        assert m.peak_rss_mb is not None and m.peak_rss_mb > 0 and m.extra["outputs"][0]["shape"] == [1, 3]
        assert m.extra["remote_python"] == sys.executable
    assert set(glob.glob("/tmp/edgeprune.*")) == before  # the remote work directory was removed
    assert "Accepted publickey for root" in Path(sshd["log"]).read_text()


def test_ssh_errors(sshd: dict[str, str], tiny_model: Path) -> None:
    spec = BenchSpec(threads=[1], warmup=0, runs=1)
    with pytest.raises(EdgepruneError, match="Host key verification failed.*connect once with `ssh -p"):
        open_device(_spec(sshd, known_hosts=sshd["empty_known_hosts"])).fingerprint()
    with pytest.raises(EdgepruneError, match="cannot reach root@127.0.0.1.*Connection refused"):
        open_device(_spec(sshd, port=str(free_port()))).fingerprint()
    with pytest.raises(EdgepruneError, match="exit code 127.*install Python 3 on the board or pass python="):
        open_device(_spec(sshd, python="/nonexistent/python3")).benchmark(tiny_model, spec, "t", "0")
    bare = "/usr/bin/python3"
    if (
        Path(bare).exists()
        and subprocess.run([bare, "-c", "import numpy, ai_edge_litert"], capture_output=True).returncode
    ):
        no_module = "No module named.*install it on the board: /usr/bin/python3 -m pip install"
        with pytest.raises(EdgepruneError, match=no_module):
            open_device(_spec(sshd, python=bare)).benchmark(tiny_model, spec, "t", "0")
    with pytest.raises(EdgepruneError, match="delegate 'gpu' is not available over ssh"):
        open_device(_spec(sshd)).benchmark(tiny_model, BenchSpec(delegate="gpu"), "t", "0")


def test_target_parsing() -> None:
    dev = SshDevice("pi@[fe80::1]:2222")
    assert (dev.user, dev.host, dev.port) == ("pi", "fe80::1", "2222")
    assert SshDevice("board.local").target == "board.local"
    for bad in ("ssh", "ssh:", "ssh:user@host:port", "ssh:a@b?python"):
        with pytest.raises(EdgepruneError):
            open_device(bad)
    with pytest.raises(EdgepruneError, match="unknown ssh option"):
        open_device("ssh:pi@board?pyhton=/usr/bin/python3")
