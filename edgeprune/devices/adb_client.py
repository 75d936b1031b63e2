"""A thin wrapper over the real ``adb`` client binary: devices, shell with exit codes, push, pull, install.

Every call is one ``adb`` subprocess with a timeout. The server port is injectable (``port=`` → ``adb -P``,
else adb's own ``ANDROID_ADB_SERVER_PORT``) so tests and CI never touch the default server on 5037.
Exit codes come from the shell v2 protocol when the device offers it (``adb features`` lists ``shell_v2``);
older devices get ``; echo <marker>$?`` appended and the code is read back from the output.
adb's own failures (no device, offline, unauthorized, several devices) become one-line ``EdgepruneError``s.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgeprune.errors import EdgepruneError

ENV_ADB = "EDGEPRUNE_ADB"
ENV_PORT = "ANDROID_ADB_SERVER_PORT"
RC_MARKER = "__EDGEPRUNE_RC__="


@dataclass(frozen=True)
class AdbDeviceInfo:
    """One line of ``adb devices -l``: serial, state (device | offline | unauthorized ...) and key:value info."""

    serial: str
    state: str
    info: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShellResult:
    rc: int
    stdout: str
    stderr: str

    def tail(self, lines: int = 3, chars: int = 400) -> str:
        """The last few non-empty lines of stderr (else stdout) on one line, for error messages."""
        text = self.stderr if self.stderr.strip() else self.stdout
        kept = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
        return (" | ".join(kept)[-chars:]) or "(no output)"


def _adb_error(stderr: str, serial: str | None, port: int | None) -> EdgepruneError | None:
    """Map adb's own error text (not the device command's) to a clear error, else None."""
    text = stderr.strip()
    who = f"device '{serial}'" if serial else "the Android device"
    if "no devices/emulators found" in text:
        return EdgepruneError(
            "no Android device is connected to the adb server" + (f" on port {port}" if port else ""),
            "connect a phone with USB debugging enabled (or start an emulator) and check `adb devices`",
        )
    if re.search(r"device '.*' not found", text):
        return EdgepruneError(f"{who} is not connected", "check the serial with `adb devices` and use adb:SERIAL")
    if "device offline" in text:
        return EdgepruneError(f"{who} is offline", "reconnect the USB cable or run `adb reconnect`, then retry")
    if "unauthorized" in text:
        return EdgepruneError(
            f"{who} has not authorised this computer for USB debugging",
            "unlock the phone, accept the 'Allow USB debugging?' prompt, then retry",
        )
    if "more than one device" in text:
        return EdgepruneError("several Android devices are connected", "choose one with --device adb:SERIAL")
    if "cannot connect to daemon" in text or "failed to start daemon" in text:
        return EdgepruneError(
            f"the adb server is not reachable{f' on port {port}' if port else ''}: {text.splitlines()[-1]}",
            "run `adb start-server` (with the same -P port) and retry",
        )
    return None


class AdbClient:
    """Runs the ``adb`` binary; ``port`` selects an isolated server (``adb -P PORT``)."""

    def __init__(self, adb: str | os.PathLike[str] | None = None, port: int | None = None,
                 timeout_s: float = 60.0) -> None:  # fmt: skip
        found = str(adb) if adb else os.environ.get(ENV_ADB) or shutil.which("adb")
        if not found or not (Path(found).is_file() or shutil.which(found)):
            raise EdgepruneError(
                "the adb client was not found",
                f"install Android platform-tools (Debian/Ubuntu: apt-get install adb) or set {ENV_ADB}=/path/to/adb",
            )
        self.adb = found
        env_port = os.environ.get(ENV_PORT, "")
        self.port = port if port is not None else (int(env_port) if env_port.isdigit() else None)
        self.timeout_s = timeout_s
        self._features: dict[str, frozenset[str]] = {}

    # ---- plumbing ---------------------------------------------------------------------------------------------
    def command(self, args: Sequence[str], serial: str | None = None) -> list[str]:
        cmd = [self.adb]
        if self.port is not None:
            cmd += ["-P", str(self.port)]
        if serial:
            cmd += ["-s", serial]
        return cmd + list(args)

    def run(self, args: Sequence[str], serial: str | None = None, timeout: float | None = None,
            what: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run one adb command; a timeout or an adb-level error (no device, offline ...) raises."""
        limit = self.timeout_s if timeout is None else timeout
        try:
            proc = subprocess.run(
                self.command(args, serial), capture_output=True, stdin=subprocess.DEVNULL, timeout=limit
            )
        except subprocess.TimeoutExpired:
            where = f" on {serial}" if serial else ""
            raise EdgepruneError(
                f"`adb {what or ' '.join(args)[:80]}`{where} did not finish within {limit:g} s",
                "check that the device responds (`adb shell true`), or raise the timeout",
            ) from None
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 0 and err.lstrip().startswith(("error:", "adb: error")):
            mapped = _adb_error(err, serial, self.port)
            if mapped is not None:
                raise mapped
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    # ---- devices ------------------------------------------------------------------------------------------------
    def devices(self) -> list[AdbDeviceInfo]:
        """Devices known to the server (``adb devices -l``); starts the server if none runs, like adb does."""
        proc = self.run(["devices", "-l"], what="devices")
        if proc.returncode != 0:
            raise EdgepruneError(f"`adb devices` failed: {proc.stderr.strip() or proc.stdout.strip()}",
                                 "check the adb installation and server port")  # fmt: skip
        found = []
        for line in proc.stdout.splitlines():
            if not line.strip() or line.startswith(("List of devices", "*")):
                continue
            parts = line.split()
            info = dict(p.split(":", 1) for p in parts[2:] if ":" in p)
            found.append(AdbDeviceInfo(parts[0], parts[1] if len(parts) > 1 else "unknown", info))
        return found

    def select(self, serial: str | None = None) -> str:
        """The serial to use: the given one (must be ready) or the only connected device."""
        devices = self.devices()
        if serial is None:
            if not devices:
                raise _adb_error("no devices/emulators found", None, self.port)  # type: ignore[misc]
            if len(devices) > 1:
                listed = ", ".join(f"{d.serial} ({d.state})" for d in devices)
                raise EdgepruneError(f"several Android devices are connected: {listed}",
                                     "choose one with --device adb:SERIAL")  # fmt: skip
            chosen = devices[0]
        else:
            match = [d for d in devices if d.serial == serial]
            if not match:
                known = ", ".join(d.serial for d in devices) or "none"
                raise EdgepruneError(f"Android device '{serial}' is not connected (connected: {known})",
                                     "check the serial with `adb devices`")  # fmt: skip
            chosen = match[0]
        if chosen.state != "device":
            raise _adb_error(f"error: device {chosen.state}", chosen.serial, self.port) or EdgepruneError(
                f"device '{chosen.serial}' is in state '{chosen.state}'", "wait until `adb devices` shows 'device'"
            )
        return chosen.serial

    def features(self, serial: str) -> frozenset[str]:
        if serial not in self._features:
            proc = self.run(["features"], serial, what="features")
            self._features[serial] = frozenset(proc.stdout.split()) if proc.returncode == 0 else frozenset()
        return self._features[serial]

    # ---- device commands ------------------------------------------------------------------------------------------
    def shell(self, serial: str, command: str | Sequence[str], timeout: float | None = None) -> ShellResult:
        """Run a device shell command and return its real exit code (v2 protocol, else the echo marker)."""
        text = command if isinstance(command, str) else shlex.join(command)
        if "shell_v2" in self.features(serial):
            proc = self.run(["shell", text], serial, timeout, what=f"shell {text[:60]}")
            return ShellResult(proc.returncode, proc.stdout, proc.stderr)
        proc = self.run(["shell", f"{text}; echo {RC_MARKER}$?"], serial, timeout, what=f"shell {text[:60]}")
        out = proc.stdout.replace("\r\n", "\n")
        m = re.search(rf"{re.escape(RC_MARKER)}(\d+)\s*$", out)
        if m is None:  # adb itself failed (or the connection dropped) before the marker came back
            return ShellResult(proc.returncode or 255, out, proc.stderr)
        return ShellResult(int(m.group(1)), out[: m.start()], proc.stderr)

    def push(self, serial: str, local: str | os.PathLike[str], remote: str, timeout: float | None = None) -> None:
        proc = self.run(["push", str(local), remote], serial, timeout, what=f"push {Path(local).name}")
        if proc.returncode != 0:
            raise EdgepruneError(f"adb push of {local} to {serial}:{remote} failed: {proc.stderr.strip()[-300:]}",
                                 "check free space on the device and that the path is writable")  # fmt: skip

    def pull(self, serial: str, remote: str, local: str | os.PathLike[str], timeout: float | None = None) -> Path:
        local = Path(local)
        if local.exists():
            local.unlink()
        proc = self.run(["pull", remote, str(local)], serial, timeout, what=f"pull {remote}")
        if proc.returncode != 0 or not local.is_file():
            why = (proc.stderr.strip() or proc.stdout.strip())[-300:]
            raise EdgepruneError(f"adb pull of {serial}:{remote} failed: {why}",
                                 "check that the file exists on the device (adb shell ls -l PATH)")  # fmt: skip
        return local

    def install(self, serial: str, apk: str | os.PathLike[str], timeout: float | None = None) -> None:
        proc = self.run(["install", "-r", str(apk)], serial, timeout, what=f"install {Path(apk).name}")
        if proc.returncode != 0 or "Success" not in proc.stdout:
            why = (proc.stderr.strip() or proc.stdout.strip())[-300:]
            raise EdgepruneError(f"installing {Path(apk).name} on {serial} failed: {why}",
                                 "check the APK (apksigner verify) and the device's install prompt")  # fmt: skip

    def kill_server(self) -> None:
        """Stop the adb server on this client's port (only call it for a server you started)."""
        try:
            subprocess.run(self.command(["kill-server"]), capture_output=True, stdin=subprocess.DEVNULL, timeout=10)
        except subprocess.TimeoutExpired:
            pass
