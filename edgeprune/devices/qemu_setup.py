"""`edgeprune device setup qemu-arm64`: a Debian arm64 userland + the aarch64 ai-edge-litert wheel, cached.

Layout of the cache (``$EDGEPRUNE_QEMU_ARM64_CACHE`` or ``~/.cache/edgeprune/qemu-arm64``)::

    rootfs/   debootstrap --foreign --variant=minbase --arch=arm64 --include=python3, every .deb unpacked,
              plus rootfs/proc/cpuinfo: an ARM-looking cpuinfo. qemu's ``-L rootfs`` serves it to the guest;
              without it XNNPACK's cpuinfo parses the host's x86 file and the Interpreter segfaults.
    wheels/   ``pip download --platform manylinux…aarch64 --only-binary=:all:`` (ai-edge-litert, numpy)
    site/     those wheels installed with ``pip install --target`` (the guest's PYTHONPATH)
    ready.json  versions; written last, so a half-finished setup is never mistaken for a ready one

Downloads come only from the machine's Debian mirror and PyPI. No chroot, binfmt or root-owned system change:
qemu-aarch64-static runs the guest python directly (android.md §3). Takes about 30-60 s.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import atomic_path, read_json, user_cache_dir, write_json_atomic

ENV_CACHE = "EDGEPRUNE_QEMU_ARM64_CACHE"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
PLATFORMS = ("manylinux_2_27_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
SETUP_HINT = "run: edgeprune device setup qemu-arm64"
# The emulated CPU matches the fake cpuinfo (Neoverse-N1 = Cortex-A76 class: ARMv8.2 + dotprod, like most phone
# big cores). qemu's default "max" CPU also advertises SVE/SME, and with qemu 7.2 XNNPACK's SME int8 kernels
# then produced wrong outputs (up to 70 LSB off, saturated logits) while "max,sme=off" was bit-exact with x86.
DEFAULT_CPU = "neoverse-n1"


def default_cache() -> Path:
    return user_cache_dir(ENV_CACHE, "qemu-arm64")


def fake_cpuinfo(cores: int) -> str:
    """An aarch64 /proc/cpuinfo (Neoverse-N1-like, ARMv8.2 features) with one entry per host core."""
    entry = ("processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics "
             "fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
             "CPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n")  # fmt: skip
    return "".join(entry.format(i=i) for i in range(max(1, cores)))


@dataclass(frozen=True)
class QemuEnv:
    """A ready cache: how to run the guest python under qemu-aarch64-static."""

    cache: Path
    qemu: str
    python: str  # path inside rootfs, e.g. usr/bin/python3.11
    info: dict[str, Any]

    @property
    def rootfs(self) -> Path:
        return self.cache / "rootfs"

    @property
    def site(self) -> Path:
        return self.cache / "site"

    def command(self, *args: str, cpu: str = DEFAULT_CPU) -> list[str]:
        return [self.qemu, "-cpu", cpu, "-L", str(self.rootfs), str(self.rootfs / self.python), *args]

    def env(self) -> dict[str, str]:
        """A minimal environment: host library paths or PYTHONHOME would confuse the guest."""
        return {"PATH": "/usr/bin:/bin", "HOME": str(self.cache), "LANG": "C.UTF-8", "PYTHONPATH": str(self.site),
                "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip


def find_env(cache: Path | None = None) -> QemuEnv | None:
    """The ready environment in ``cache``, or None when setup has not completed there."""
    cache = Path(cache) if cache else default_cache()
    marker = cache / "ready.json"
    if not marker.is_file():
        return None
    info = read_json(marker)
    qemu = shutil.which("qemu-aarch64-static") or info.get("qemu_path", "")
    if not qemu or not (cache / "rootfs" / info["python"]).exists():
        return None
    return QemuEnv(cache=cache, qemu=qemu, python=info["python"], info=info)


def require_env(cache: Path | None = None) -> QemuEnv:
    env = find_env(cache)
    if env is None:
        where = Path(cache) if cache else default_cache()
        raise EdgepruneError(f"the qemu-arm64 lane is not set up (no ready cache in {where})", SETUP_HINT)
    if not shutil.which("qemu-aarch64-static") and not Path(env.qemu).exists():
        raise EdgepruneError("qemu-aarch64-static is not installed", "install it: apt-get install qemu-user-static")
    return env


def apt_mirror() -> str:
    """The Debian mirror this machine already uses (deb822 .sources or sources.list), else deb.debian.org."""
    texts = [p.read_text(errors="replace") for p in sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    for text in texts:
        for block in text.split("\n\n"):
            m = re.search(r"^URIs:\s*(\S+)", block, re.M)
            if (
                m
                and re.search(r"^Suites:.*\b(bookworm|trixie|bullseye|stable)\b", block, re.M)
                and "security" not in m.group(1)
            ):
                return m.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        m = re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+main", legacy.read_text(errors="replace"), re.M)
        if m and "security" not in m.group(1):
            return m.group(1)
    return DEFAULT_MIRROR


def _run(cmd: list[str], what: str, timeout: float = 900, **kw: Any) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise EdgepruneError(
            f"{what} did not finish within {timeout:g} s", "check the network to the mirror/PyPI"
        ) from None
    if proc.returncode != 0:
        tail = " | ".join([ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][-3:])
        raise EdgepruneError(f"{what} failed (exit code {proc.returncode}): {tail[-400:]}",
                             "check the network to the Debian mirror and PyPI, then rerun with --force")  # fmt: skip
    return proc


def find_tool(name: str) -> str | None:
    """A tool on PATH or in the sbin directories (which a normal user's PATH often lacks)."""
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")


def _pin(dist: str) -> str:
    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return dist


def _build_rootfs(dest: Path, mirror: str, log: Callable[[str], None], wrapper: list[str]) -> str:
    """debootstrap (first stage only) + unpack every downloaded .deb; returns the guest python path."""
    log(f"debootstrap {SUITE} arm64 (minbase + python3) from {mirror}")
    _run([*wrapper, find_tool("debootstrap") or "debootstrap", "--foreign", "--variant=minbase", "--arch=arm64",
          "--include=python3", SUITE, str(dest), mirror],
         "debootstrap of the arm64 userland")  # fmt: skip
    debs = sorted((dest / "var/cache/apt/archives").glob("*.deb"))
    log(f"unpacking {len(debs)} packages")
    for deb in debs:
        _run([find_tool("dpkg-deb") or "dpkg-deb", "-x", str(deb), str(dest)], f"unpacking {deb.name}")
        deb.unlink()
    (dest / "proc").mkdir(exist_ok=True)
    (dest / "proc" / "cpuinfo").write_text(fake_cpuinfo(os.cpu_count() or 1))
    pythons = sorted(p for p in (dest / "usr/bin").glob("python3.*") if re.fullmatch(r"python3\.\d+", p.name))
    if not pythons:
        raise EdgepruneError("the arm64 userland has no python3", "rerun with --force (the download may be incomplete)")
    return str(pythons[-1].relative_to(dest))


def _install_wheels(cache: Path, pyver: str, log: Callable[[str], None]) -> None:
    reqs = [_pin("ai-edge-litert"), _pin("numpy")]
    tag = pyver.replace(".", "")
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    common = [*plat, "--python-version", pyver, "--implementation", "cp", "--abi", f"cp{tag}", "--only-binary=:all:"]
    wheels = cache / "wheels"
    log(f"pip download {' '.join(reqs)} for aarch64 / cp{tag}")
    _run(
        [sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels), *common, *reqs],
        "pip download of the aarch64 wheels",
    )
    with atomic_path(cache / "site") as tmp:
        _run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels),
              "--target", str(tmp), "--no-compile", *common, *reqs],
             "pip install --target of the aarch64 wheels")  # fmt: skip


def setup_qemu_arm64(cache: Path | None = None, mirror: str | None = None, force: bool = False,
                     log: Callable[[str], None] = print) -> QemuEnv:  # fmt: skip
    """Create (or reuse) the cache; returns the ready environment. ``force`` rebuilds everything."""
    cache = Path(cache) if cache else default_cache()
    if not force and (env := find_env(cache)) is not None:
        log(f"qemu-arm64 lane already set up in {cache}")
        return env
    missing = [t for t in ("qemu-aarch64-static", "debootstrap", "dpkg-deb") if not find_tool(t)]
    if missing:
        raise EdgepruneError(f"missing tools for the qemu-arm64 lane: {', '.join(missing)}",
                             "install them: apt-get install qemu-user-static debootstrap")  # fmt: skip
    wrapper: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # debootstrap insists on root; fakeroot is enough here
        if not shutil.which("fakeroot"):
            raise EdgepruneError("debootstrap needs root (or fakeroot) to unpack the arm64 userland",
                                 "install fakeroot (apt-get install fakeroot) or run the setup as root")  # fmt: skip
        wrapper = ["fakeroot"]
    t0 = time.monotonic()
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "ready.json").unlink(missing_ok=True)
    mirror = mirror or apt_mirror()
    with atomic_path(cache / "rootfs") as tmp:
        python = _build_rootfs(tmp, mirror, log, wrapper)
    pyver = re.sub(r"^.*python", "", python)
    _install_wheels(cache, pyver, log)
    qemu = shutil.which("qemu-aarch64-static") or "qemu-aarch64-static"
    probe_env = QemuEnv(cache=cache, qemu=qemu, python=python, info={})
    log("checking ai-edge-litert under qemu-aarch64")
    probe_code = ("import platform, numpy, ai_edge_litert.interpreter as i, ai_edge_litert as a; "
                  "print(platform.machine(), numpy.__version__, getattr(a, '__version__', '?'))")  # fmt: skip
    probe = _run(probe_env.command("-c", probe_code),
                 "importing ai-edge-litert under qemu", timeout=300, env=probe_env.env()).stdout.split()  # fmt: skip
    qemu_version = _run([qemu, "--version"], "qemu --version").stdout.splitlines()[0]
    info = {"python": python, "python_version": pyver, "machine": probe[0], "numpy": probe[1],
            "ai_edge_litert": probe[2], "qemu": qemu_version, "qemu_path": qemu, "suite": SUITE, "mirror": mirror,
            "host": platform.machine(), "setup_seconds": round(time.monotonic() - t0, 1)}  # fmt: skip
    write_json_atomic(cache / "ready.json", info)
    log(f"qemu-arm64 lane ready in {cache} ({info['setup_seconds']} s)")
    return QemuEnv(cache=cache, qemu=qemu, python=python, info=info)
