"""A small loopback adb *server* that the real ``adb`` client talks to (android.md §4).

The real client speaks the host "smart socket" protocol to its server: a 4-hex-digit length, then the request
(``host:version``, ``host:devices-l``, ``host:tport:serial:X``, ``shell,v2,raw:CMD``, ``sync:``, ``exec:...``);
the server answers ``OKAY`` or ``FAIL`` + length + message. After a transport is chosen, the same socket carries
the device service: the shell v2 packet stream (stdout/stderr/exit code), the legacy shell byte stream, the
file-sync protocol used by push/pull, or a streamed ``cmd package install``.

Each fake device has a tiny virtual file system and a toy shell that knows the few commands edgeprune sends
(getprop, cat, grep -H, chmod, mkdir, rm, dumpsys battery, run-as, am start, logcat, pm list packages,
taskset); tests add regex rules for everything else (e.g. ``benchmark_model``). Unknown commands fail with
exit code 127 like a real shell. Only the standard library is used.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ShellReply = tuple[str | bytes, str | bytes, int]
Rule = Callable[["FakeDevice", list[str]], ShellReply]

FEATURES_V2 = "shell_v2,cmd"
FEATURES_LEGACY = "cmd"


@dataclass
class FakeFile:
    data: bytes
    mode: int = 0o644


@dataclass
class FakeDevice:
    """One phone as the fake server presents it."""

    serial: str
    state: str = "device"  # device | offline | unauthorized
    model: str = "Pixel_7"
    shell_v2: bool = True
    props: dict[str, str] = field(default_factory=dict)
    files: dict[str, FakeFile] = field(default_factory=dict)
    rules: list[tuple[re.Pattern[str], Rule]] = field(default_factory=list)
    packages: set[str] = field(default_factory=set)
    install_package: str = "org.edgeprune.demo"  # what a streamed install of any APK registers
    battery_temps_c: list[float] = field(default_factory=lambda: [31.0])
    activities: dict[str, Callable[[FakeDevice, dict[str, str]], None]] = field(default_factory=dict)
    logcat: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # every shell command received, in order
    taskset_masks: list[str] = field(default_factory=list)
    installed_apks: list[bytes] = field(default_factory=list)
    bench_calls: list[dict[str, str]] = field(default_factory=list)  # flags of every benchmark_model run
    transport_id: int = 0

    def add_rule(self, pattern: str, rule: Rule) -> None:
        self.rules.append((re.compile(pattern), rule))

    def write(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        self.files[path] = FakeFile(data.encode() if isinstance(data, str) else data, mode)

    def app_dir(self, package: str) -> str:
        return f"/data/user/0/{package}"

    # ---- the toy shell -------------------------------------------------------------------------------------
    def run(self, command: str) -> ShellReply:
        self.commands.append(command)
        marker = re.fullmatch(r"(.*); echo (\S+)\$\?", command, flags=re.S)
        if marker:  # the exit-code trick of clients without shell_v2
            out, err, rc = self.run_argv(shlex.split(marker.group(1)))
            merged = b"".join(x.encode() if isinstance(x, str) else x for x in (out, err))
            return merged + f"{marker.group(2)}{rc}\n".encode(), "", 0
        return self.run_argv(shlex.split(command))

    def run_argv(self, argv: list[str], cwd: str = "/") -> ShellReply:
        if not argv:
            return "", "", 0
        if argv[0] == "taskset":  # record the mask, then run the pinned command (rules see it without taskset)
            return self._cmd_taskset(argv[1:], cwd)
        joined = shlex.join(argv)
        for pattern, rule in self.rules:
            if pattern.search(joined):
                return rule(self, argv)
        name, args = argv[0], argv[1:]
        handler = getattr(self, "_cmd_" + name.replace("-", "_"), None)
        if handler is None:
            return "", f"/system/bin/sh: {name}: inaccessible or not found\n", 127
        return handler(args, cwd)

    def _resolve(self, path: str, cwd: str) -> str:
        return path if path.startswith("/") else f"{cwd.rstrip('/')}/{path}"

    def _glob(self, patterns: list[str], cwd: str) -> list[str]:
        out: list[str] = []
        for p in patterns:
            p = self._resolve(p, cwd)
            hits = sorted(f for f in self.files if fnmatch.fnmatchcase(f, p)) if any(c in p for c in "*?[") else [p]
            out += hits
        return out

    def _cmd_getprop(self, args: list[str], cwd: str) -> ShellReply:
        if args:
            return self.props.get(args[0], "") + "\n", "", 0
        return "".join(f"[{k}]: [{v}]\n" for k, v in sorted(self.props.items())), "", 0

    def _cmd_cat(self, args: list[str], cwd: str) -> ShellReply:
        out, err, rc = b"", "", 0
        for path in self._glob(args, cwd):
            f = self.files.get(path)
            if f is None:
                err += f"cat: {path}: No such file or directory\n"
                rc = 1
            else:
                out += f.data
        return out, err, rc

    def _cmd_grep(self, args: list[str], cwd: str) -> ShellReply:
        if args[:2] != ["-H", "."]:
            return "", "grep: only 'grep -H . FILES' is emulated\n", 2
        lines = []
        for path in self._glob(args[2:], cwd):
            if path in self.files:
                lines += [f"{path}:{ln}" for ln in self.files[path].data.decode().splitlines() if ln]
        return "".join(ln + "\n" for ln in lines), "", 0 if lines else 1

    def _cmd_chmod(self, args: list[str], cwd: str) -> ShellReply:
        mode, path = int(args[0], 8), self._resolve(args[1], cwd)
        if path not in self.files:
            return "", f"chmod: {path}: No such file or directory\n", 1
        self.files[path].mode = mode
        return "", "", 0

    def _cmd_mkdir(self, args: list[str], cwd: str) -> ShellReply:
        return "", "", 0

    def _cmd_rm(self, args: list[str], cwd: str) -> ShellReply:
        for path in [self._resolve(a, cwd) for a in args if not a.startswith("-")]:
            for f in [f for f in self.files if f == path or f.startswith(path.rstrip("/") + "/")]:
                del self.files[f]
        return "", "", 0

    def _cmd_ls(self, args: list[str], cwd: str) -> ShellReply:
        paths = [self._resolve(a, cwd) for a in args if not a.startswith("-")]
        missing = [p for p in paths if p not in self.files]
        if missing:
            return "", f"ls: {missing[0]}: No such file or directory\n", 1
        return "".join(p + "\n" for p in paths), "", 0

    def _cmd_cp(self, args: list[str], cwd: str) -> ShellReply:
        src, dst = self._resolve(args[0], cwd), self._resolve(args[1], cwd)
        if src not in self.files:
            return "", f"cp: {src}: No such file or directory\n", 1
        self.files[dst] = FakeFile(self.files[src].data, self.files[src].mode)
        return "", "", 0

    def _cmd_echo(self, args: list[str], cwd: str) -> ShellReply:
        return " ".join(args) + "\n", "", 0

    def _cmd_taskset(self, args: list[str], cwd: str) -> ShellReply:
        self.taskset_masks.append(args[0])
        return self.run_argv(args[1:], cwd)

    def _cmd_dumpsys(self, args: list[str], cwd: str) -> ShellReply:
        if args != ["battery"]:
            return "", f"Can't find service: {' '.join(args)}\n", 0
        temp = self.battery_temps_c.pop(0) if len(self.battery_temps_c) > 1 else self.battery_temps_c[0]
        return (
            "Current Battery Service state:\n  AC powered: false\n  USB powered: true\n  status: 2\n  health: 2\n"
            f"  present: true\n  level: 87\n  scale: 100\n  voltage: 4213\n  temperature: {round(temp * 10)}\n"
            "  technology: Li-ion\n", "", 0
        )  # fmt: skip

    def _cmd_pm(self, args: list[str], cwd: str) -> ShellReply:
        if args[:2] != ["list", "packages"]:
            return "", "pm: only 'pm list packages' is emulated\n", 1
        wanted = args[2] if len(args) > 2 else ""
        return "".join(f"package:{p}\n" for p in sorted(self.packages) if wanted in p), "", 0

    def _cmd_run_as(self, args: list[str], cwd: str) -> ShellReply:
        package = args[0]
        if package not in self.packages:
            return "", f"run-as: unknown package: {package}\n", 1
        return self.run_argv(args[1:], cwd=self.app_dir(package))

    def _cmd_logcat(self, args: list[str], cwd: str) -> ShellReply:
        if "-c" in args:
            self.logcat.clear()
            return "", "", 0
        tags = [a.split(":")[0] for i, a in enumerate(args) if i > 0 and args[i - 1] == "-s"]
        lines = [ln for ln in self.logcat if not tags or any(f" {t}:" in ln or f" {t} " in ln for t in tags)]
        return "".join(ln + "\n" for ln in lines), "", 0

    def _cmd_am(self, args: list[str], cwd: str) -> ShellReply:
        if not args or args[0] != "start":
            return "", "am: only 'am start' is emulated\n", 1
        component, extras, i = "", {}, 1
        while i < len(args):
            a = args[i]
            if a == "-n":
                component, i = args[i + 1], i + 2
            elif a in ("--es", "--ei", "--ez"):
                extras[args[i + 1]], i = args[i + 2], i + 3
            else:
                i += 1
        package = component.split("/")[0]
        activity = self.activities.get(component)
        if package not in self.packages or activity is None:
            return (f"Starting: Intent {{ cmp={component} }}\n", "Error type 3\nError: Activity class {"
                    f"{component}}} does not exist.\n", 1)  # fmt: skip
        activity(self, extras)
        return f"Starting: Intent {{ cmp={component} (has extras) }}\n", "", 0


def log_line(tag: str, message: str, level: str = "I", pid: int = 4242) -> str:
    """A logcat line in the default threadtime format."""
    return f"01-02 03:04:05.678  {pid}  {pid + 17} {level} {tag}: {message}"


# ---- the server --------------------------------------------------------------------------------------------


class _Closed(Exception):
    pass


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise _Closed
        buf += chunk
    return buf


def _okay_data(conn: socket.socket, payload: str | bytes) -> None:
    data = payload.encode() if isinstance(payload, str) else payload
    conn.sendall(b"OKAY" + f"{len(data):04x}".encode() + data)


def _fail(conn: socket.socket, message: str) -> None:
    data = message.encode()
    conn.sendall(b"FAIL" + f"{len(data):04x}".encode() + data)


class FakeAdbServer:
    """Serve the adb host protocol on 127.0.0.1:``port`` (0 picks a free port) in daemon threads."""

    def __init__(self, devices: list[FakeDevice], port: int = 0) -> None:
        self.devices = devices
        for i, d in enumerate(devices, start=1):
            d.transport_id = d.transport_id or i
        self.requests: list[str] = []
        self.delays: dict[str, float] = {}  # regex on shell command -> seconds before answering
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> FakeAdbServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> FakeAdbServer:
        return self.__enter__()

    def stop(self) -> None:
        self._stop.set()
        try:
            self._sock.close()
        except OSError:
            pass

    def device(self, serial: str) -> FakeDevice:
        return next(d for d in self.devices if d.serial == serial)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                self._session(conn)
        except (_Closed, ConnectionError, OSError):
            pass

    # ---- request dispatch -----------------------------------------------------------------------------------
    def _read_request(self, conn: socket.socket) -> str:
        size = int(_recv_exact(conn, 4), 16)
        req = _recv_exact(conn, size).decode()
        self.requests.append(req)
        return req

    def _pick(self, selector: str) -> FakeDevice | str:
        """Resolve 'any', 'usb', 'local', 'serial:X' or 'id:N' to a usable device, or an error message."""
        if selector.startswith("serial:"):
            serial = selector[len("serial:") :]
            found = [d for d in self.devices if d.serial == serial]
            if not found:
                return f"device '{serial}' not found"
            dev = found[0]
        elif selector.startswith("id:"):
            found = [d for d in self.devices if d.transport_id == int(selector[3:])]
            if not found:
                return f"no device with transport id '{selector[3:]}'"
            dev = found[0]
        else:
            if not self.devices:
                return "no devices/emulators found"
            if len(self.devices) > 1:
                return "more than one device/emulator"
            dev = self.devices[0]
        if dev.state == "offline":
            return "device offline"
        if dev.state == "unauthorized":
            return (
                "device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set\n"
                "Try 'adb kill-server' if that seems wrong.\nOtherwise check for a confirmation dialog on your device."
            )
        return dev

    def _session(self, conn: socket.socket) -> None:
        device: FakeDevice | None = None
        while True:
            req = self._read_request(conn)
            if device is not None:
                self._service(conn, device, req)
                return
            if req == "host:version":  # one answer per connection: the client waits for our close
                _okay_data(conn, f"{41:04x}")
                return
            elif req == "host:kill":
                conn.sendall(b"OKAY")
                return
            elif req in ("host:devices", "host:devices-l"):
                _okay_data(conn, self._device_list(long=req.endswith("-l")))
                return
            elif req.startswith(("host:transport", "host:tport:")):
                tport = req.startswith("host:tport:")
                sel = req.split(":", 2)[2] if tport else req[len("host:transport") :]
                sel = {"-any": "any", "-usb": "any", "-local": "any", "": "any"}.get(sel, sel)
                if sel.startswith(":"):
                    sel = "serial:" + sel[1:]
                elif sel.startswith("-id:"):
                    sel = "id:" + sel[4:]
                elif sel in ("usb", "local"):
                    sel = "any"
                picked = self._pick(sel)
                if isinstance(picked, str):
                    _fail(conn, picked)
                    return
                conn.sendall(b"OKAY" + (struct.pack("<Q", picked.transport_id) if tport else b""))
                device = picked
            else:
                self._device_query(conn, req)
                return

    def _device_list(self, long: bool) -> str:
        lines = []
        for d in self.devices:
            if long:
                extra = ""
                if d.state == "device":
                    extra = f" product:{d.model.lower()} model:{d.model} device:{d.model.lower()}"
                lines.append(f"{d.serial:<22} {d.state}{extra} transport_id:{d.transport_id}")
            else:
                lines.append(f"{d.serial}\t{d.state}")
        return "".join(ln + "\n" for ln in lines)

    def _device_query(self, conn: socket.socket, req: str) -> None:
        """host-serial:S:CMD, host-transport-id:N:CMD, host-usb:CMD, host-local:CMD, host:CMD."""
        if req.startswith("host-serial:"):
            rest = req[len("host-serial:") :]
            serial, _, cmd = rest.rpartition(":")
            sel = "serial:" + serial
        elif req.startswith("host-transport-id:"):
            ident, _, cmd = req[len("host-transport-id:") :].partition(":")
            sel = "id:" + ident
        else:
            sel, cmd = "any", req.split(":", 1)[1]
        if cmd == "get-state":
            found = [d for d in self.devices if sel == "any" or sel == f"serial:{d.serial}"]
            if len(found) != 1:
                _fail(conn, "no devices/emulators found" if not found else "more than one device/emulator")
            else:
                _okay_data(conn, found[0].state)
            return
        picked = self._pick(sel)
        if isinstance(picked, str):
            _fail(conn, picked)
        elif cmd == "features":
            _okay_data(conn, FEATURES_V2 if picked.shell_v2 else FEATURES_LEGACY)
        elif cmd == "get-serialno":
            _okay_data(conn, picked.serial)
        else:
            _fail(conn, f"unsupported host request '{req}'")

    # ---- device services -------------------------------------------------------------------------------------
    def _service(self, conn: socket.socket, dev: FakeDevice, req: str) -> None:
        if req.startswith("shell"):
            head, _, command = req.partition(":")
            v2 = "v2" in head.split(",")[1:]
            if v2 and not dev.shell_v2:
                _fail(conn, "shell protocol not supported")
                return
            conn.sendall(b"OKAY")
            self._shell(conn, dev, command, v2)
        elif req == "sync:":
            conn.sendall(b"OKAY")
            self._sync(conn, dev)
        elif req.startswith("exec:cmd package") and " -S " in req:
            conn.sendall(b"OKAY")
            self._install(conn, dev, int(req.rsplit(" -S ", 1)[1].split()[0]))
        else:
            _fail(conn, f"unsupported service '{req}'")

    def _shell(self, conn: socket.socket, dev: FakeDevice, command: str, v2: bool) -> None:
        for pattern, seconds in self.delays.items():
            if re.search(pattern, command) and self._stop.wait(seconds):
                return
        try:
            out, err, rc = dev.run(command)
        except Exception as exc:  # a bug in a test rule must not hang the client
            out, err, rc = "", f"fake adb rule error: {exc!r}\n", 99
        out_b = out.encode() if isinstance(out, str) else out
        err_b = err.encode() if isinstance(err, str) else err
        if v2:
            for ident, data in ((1, out_b), (2, err_b)):
                for i in range(0, len(data), 32768):
                    chunk = data[i : i + 32768]
                    conn.sendall(struct.pack("<BI", ident, len(chunk)) + chunk)
            conn.sendall(struct.pack("<BI", 3, 1) + bytes([rc & 0xFF]))
        else:
            conn.sendall(out_b + err_b)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(2.0)
        try:  # drain the client's stdin / close-stdin packets until it hangs up
            while conn.recv(4096):
                pass
        except OSError:
            pass

    def _sync(self, conn: socket.socket, dev: FakeDevice) -> None:
        while True:
            ident = _recv_exact(conn, 4)
            (size,) = struct.unpack("<I", _recv_exact(conn, 4))
            if ident == b"QUIT":
                return
            path = _recv_exact(conn, size).decode()
            if ident == b"STAT":
                f = dev.files.get(path)
                is_dir = f is None and any(p.startswith(path.rstrip("/") + "/") for p in dev.files)
                mode = 0o100000 | f.mode if f else (0o040755 if is_dir or path.rstrip("/") == "/data/local/tmp" else 0)
                conn.sendall(b"STAT" + struct.pack("<III", mode, len(f.data) if f else 0, 1700000000))
            elif ident == b"SEND":
                remote, _, mode = path.rpartition(",")
                data = b""
                while True:
                    kind = _recv_exact(conn, 4)
                    (n,) = struct.unpack("<I", _recv_exact(conn, 4))
                    if kind == b"DATA":
                        data += _recv_exact(conn, n)
                    elif kind == b"DONE":
                        break
                    else:
                        raise _Closed
                dev.files[remote] = FakeFile(data, int(mode) & 0o777)
                conn.sendall(b"OKAY" + struct.pack("<I", 0))
            elif ident == b"RECV":
                f = dev.files.get(path)
                if f is None:
                    msg = b"No such file or directory"
                    conn.sendall(b"FAIL" + struct.pack("<I", len(msg)) + msg)
                    continue
                for i in range(0, len(f.data), 65536):
                    chunk = f.data[i : i + 65536]
                    conn.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                conn.sendall(b"DONE" + struct.pack("<I", 0))
            else:
                msg = f"unsupported sync request {ident!r}".encode()
                conn.sendall(b"FAIL" + struct.pack("<I", len(msg)) + msg)
                return

    def _install(self, conn: socket.socket, dev: FakeDevice, size: int) -> None:
        apk = _recv_exact(conn, size)
        if not apk.startswith(b"PK"):
            conn.sendall(b"Failure [INSTALL_PARSE_FAILED_NOT_APK: not a zip archive]\n")
        else:
            dev.installed_apks.append(apk)
            dev.packages.add(dev.install_package)
            conn.sendall(b"Success\n")
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(2.0)
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_closed(port: int, timeout: float = 5.0) -> bool:
    """True once nothing accepts connections on ``port`` any more."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.05)
    return False
