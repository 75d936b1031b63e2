"""An embedded Linux board (Raspberry Pi, Jetson ...) over ssh: ``ssh:user@host[:port][?python=…&identity=…]``.

The model and the host benchmark script (``_host_bench.py``, the very file HostDevice runs) are copied with
``scp`` into a ``mktemp -d`` directory on the board, the script runs there once per thread count with the
board's Python + ai-edge-litert, its JSON line comes back over ssh, and the same ``latency_stats`` turns the
samples into numbers. Every ssh/scp call uses BatchMode (keys only, never a password prompt) and a timeout.

Options (or environment): ``python`` ($EDGEPRUNE_SSH_PYTHON, default python3), ``identity``
($EDGEPRUNE_SSH_IDENTITY), ``known_hosts`` ($EDGEPRUNE_SSH_KNOWN_HOSTS), ``accept_new=1`` (trust an unknown
host key on first use), ``timeout`` (s per run). Unknown host keys are refused by default.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

from edgeprune.devices.base import (
    BenchSpec,
    Device,
    check_cpu_bench_request,
    option_bool,
    register_device,
    split_options,
)
from edgeprune.devices.bench_result import BENCH_SCRIPT, measurement_from_bench, parse_bench_result
from edgeprune.errors import EdgepruneError
from edgeprune.schemas import DeviceFingerprint, Measurement

ENV_PYTHON = "EDGEPRUNE_SSH_PYTHON"
ENV_IDENTITY = "EDGEPRUNE_SSH_IDENTITY"
ENV_KNOWN_HOSTS = "EDGEPRUNE_SSH_KNOWN_HOSTS"
_OPTIONS = {"python", "identity", "known_hosts", "accept_new", "timeout"}
_TARGET = re.compile(r"^(?:(?P<user>[^@/\s]+)@)?(?P<host>\[[^\]]+\]|[^:@/\s\[\]]+)(?::(?P<port>\d+))?$")

# Runs on the board (stdin of `python3 -`): only the standard library, so it works before litert is installed.
FINGERPRINT_SCRIPT = r"""
import json, os, platform, socket
def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
cpu = ""
for line in read("/proc/cpuinfo").splitlines():
    key, _, value = line.partition(":")
    if key.strip() in ("model name", "Hardware", "Processor", "Model") and value.strip():
        cpu = value.strip()
try:
    import ai_edge_litert
    litert = getattr(ai_edge_litert, "__version__", "unknown")
except Exception:
    litert = None
print(json.dumps({"hostname": socket.gethostname(), "cpu": cpu or platform.processor(), "machine": platform.machine(),
                  "os": platform.system() + " " + platform.release(), "cores": os.cpu_count(),
                  "board": read("/proc/device-tree/model").strip("\x00\n"), "python": platform.python_version(),
                  "governor": read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").strip(),
                  "ai_edge_litert": litert}))
"""


@register_device
class SshDevice(Device):
    kind = "ssh"
    timing_note = "an embedded Linux board over ssh, the board's own Python and ai-edge-litert"

    def __init__(self, target: str, options: dict[str, str] | None = None) -> None:
        m = _TARGET.match(target or "")
        if not m:
            raise EdgepruneError(f"bad ssh target '{target}'", "write it as ssh:user@host or ssh:user@host:port")
        self.options = dict(options or {})
        unknown = set(self.options) - _OPTIONS
        if unknown:
            raise EdgepruneError(f"unknown ssh option(s): {', '.join(sorted(unknown))}",
                                 f"known: {', '.join(sorted(_OPTIONS))}")  # fmt: skip
        self.user, self.host, self.port = m.group("user"), m.group("host").strip("[]"), m.group("port")
        self.python = self.options.get("python") or os.environ.get(ENV_PYTHON) or "python3"
        self.identity = self.options.get("identity") or os.environ.get(ENV_IDENTITY)
        self.known_hosts = self.options.get("known_hosts") or os.environ.get(ENV_KNOWN_HOSTS)
        self.timeout_s = float(self.options.get("timeout", 600))
        self.target = f"{self.user}@{self.host}" if self.user else self.host

    @classmethod
    def from_spec(cls, arg: str | None) -> SshDevice:
        target, options = split_options(arg)
        if not target:
            raise EdgepruneError("the ssh device needs a target", "use ssh:user@host or ssh:user@host:port")
        return cls(target, options)

    def _common(self) -> list[str]:
        opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=30"]
        if option_bool(self.options.get("accept_new")):
            opts += ["-o", "StrictHostKeyChecking=accept-new"]
        if self.identity:
            opts += ["-i", str(Path(self.identity).expanduser()), "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            opts += ["-o", f"UserKnownHostsFile={Path(self.known_hosts).expanduser()}"]
        return opts

    def _run(self, argv: list[str], what: str, timeout: float = 120.0, stdin: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                                  stdin=None if stdin is not None else subprocess.DEVNULL)  # fmt: skip
        except FileNotFoundError:
            raise EdgepruneError(
                f"'{argv[0]}' was not found", "install the OpenSSH client (apt-get install openssh-client)"
            ) from None
        except subprocess.TimeoutExpired:
            raise EdgepruneError(f"{what} on {self.target} did not finish within {timeout:g} s",
                                 "check the board is reachable and not overloaded, "
                                 "or raise the timeout= option") from None  # fmt: skip
        tail = " | ".join([ln.strip() for ln in proc.stderr.splitlines() if ln.strip()][-3:])[-400:]
        unreachable = proc.returncode == 255 or (argv[0] == "scp" and proc.returncode != 0)
        unreachable_re = r"Connection refused|timed out|Permission denied|Host key|resolve|No route"
        if unreachable and re.search(unreachable_re, tail):
            fix = (f"connect once with `ssh{' -p ' + self.port if self.port else ''} {self.target}` "
                   "to accept the host key"
                   if "Host key verification failed" in tail else
                   "check the address and port, that sshd runs on the board "
                   "and that key login works without a password")  # fmt: skip
            raise EdgepruneError(f"{what}: cannot reach {self.target} over ssh ({tail})", fix)
        if unreachable:
            raise EdgepruneError(f"{what} failed on {self.target}: {tail or 'no message'}",
                                 "check free space in /tmp on the board and the ssh connection")  # fmt: skip
        if check and proc.returncode != 0:
            if "No module named" in tail:
                missing = re.search(r"No module named '([^']+)'", tail)
                package = "ai-edge-litert" if not missing or "litert" in missing.group(1) else missing.group(1)
                fix = f"install it on the board: {self.python} -m pip install {package}"
            elif proc.returncode == 127:
                fix = f"install Python 3 on the board or pass python=/path/to/python3 (now '{self.python}')"
            else:
                fix = "run the same command over ssh by hand to see the full output"
            raise EdgepruneError(
                f"{what} failed on {self.target} (exit code {proc.returncode}): {tail or '(no stderr)'}", fix
            )
        return proc

    def ssh(self, remote: list[str], what: str, timeout: float = 120.0, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
        cmd = ["ssh", *self._common(), *(["-p", self.port] if self.port else []), self.target, shlex.join(remote)]
        return self._run(cmd, what, timeout, stdin, check)

    def copy(self, files: list[Path], remote_dir: str) -> None:
        host = f"[{self.host}]" if ":" in self.host else self.host
        dest = f"{self.user + '@' if self.user else ''}{host}:{remote_dir}/"
        self._run(["scp", "-q", *self._common(), *(["-P", self.port] if self.port else []), *map(str, files), dest],
                  f"copying {', '.join(f.name for f in files)}", timeout=self.timeout_s)  # fmt: skip

    def fingerprint(self) -> DeviceFingerprint:
        proc = self.ssh([self.python, "-"], "reading the board's description", stdin=FINGERPRINT_SCRIPT)
        try:
            info = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            raise EdgepruneError(f"{self.target} did not describe itself (output: {proc.stdout[-200:]!r})",
                                 f"check that '{self.python}' is Python 3 on the board") from None  # fmt: skip
        return DeviceFingerprint(
            kind=self.kind, id=f"{self.target}{':' + self.port if self.port else ''}",
            model=info["board"] or info["cpu"],
            abi=info["machine"], os=info["os"], soc=info["cpu"], cores=info["cores"], cpu_governor=info["governor"],
            hostname=info["hostname"], python=info["python"], remote_ai_edge_litert=info["ai_edge_litert"],
        )  # fmt: skip

    def benchmark(self, model_path: Path, spec: BenchSpec, artifact_name: str,
                  artifact_sha256: str) -> list[Measurement]:  # fmt: skip
        model_path = check_cpu_bench_request(model_path, spec, "over ssh")
        device = self.fingerprint()
        work = self.ssh(["mktemp", "-d", "/tmp/edgeprune.XXXXXXXX"], "creating a work directory").stdout.strip()
        if not re.fullmatch(r"/tmp/edgeprune\.[\w]+", work):
            raise EdgepruneError(f"unexpected work directory '{work}' on {self.target}", "check mktemp on the board")
        try:
            self.copy([model_path, BENCH_SCRIPT], work)
            out = []
            for threads in spec.threads:
                cmd = [self.python, f"{work}/{BENCH_SCRIPT.name}", "--model", f"{work}/{model_path.name}",
                       "--threads", str(threads), "--warmup", str(spec.warmup), "--runs", str(spec.runs)]  # fmt: skip
                if not spec.use_xnnpack:
                    cmd.append("--no-xnnpack")
                proc = self.ssh(cmd, f"benchmark of {model_path.name} (threads={threads})", timeout=self.timeout_s)
                result = parse_bench_result(proc.stdout, proc.stderr)
                if result is None:
                    raise EdgepruneError(f"the benchmark on {self.target} printed no result: {proc.stdout[-200:]!r}",
                                         "run it over ssh by hand: " + shlex.join(cmd))  # fmt: skip
                out.append(measurement_from_bench(result, device, threads, artifact_name, artifact_sha256,
                                                  remote_python=self.python))
            return out
        finally:
            try:
                self.ssh(["rm", "-rf", work], "cleaning up", check=False)
            except EdgepruneError:  # the board went away: keep the original error
                pass
