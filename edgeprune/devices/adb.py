"""Android phones and emulators through the real ``adb`` client: ``adb``, ``adb:SERIAL``, ``adb:SERIAL?opt=v&...``.

Two ways to time a model:

* **benchmark_model** (default): push the user's own TFLite/LiteRT ``benchmark_model`` binary (never
  downloaded; ``binary=`` option, ``BenchSpec.benchmark_binary`` or ``$EDGEPRUNE_BENCHMARK_MODEL``) and the
  model to a private ``/data/local/tmp/edgeprune-*`` directory, run it per thread count (optionally under
  ``taskset`` on the big cores, after a battery cool-down), parse its log, pull the op-profile CSV, clean up.
* **demo app** (``app=1`` / ``BenchSpec.via_app``): ``am start`` the edgeprune demo app's BenchmarkActivity
  on a copy of the model in the app's files dir, wait for ``EDGEPRUNE_BENCHMARK_DONE`` in logcat (or the
  file), read the results JSON with ``run-as`` and validate it as a Measurement. Its latency comes from real
  per-run samples (same maths as ``latency_stats``); benchmark_model only prints a summary.

Spec options: port, adb, binary, apk, app, big_cores, cooldown (°C), delegate, flavor (tflite | litert),
timeout (s per run), poll (s). Options in the device spec win over the BenchSpec.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from edgeprune.devices.adb_client import AdbClient, ShellResult
from edgeprune.devices.base import BenchSpec, Device, option_bool, register_device, split_options
from edgeprune.devices.benchmark_parser import parse_benchmark_output, parse_op_profile, summary_latency
from edgeprune.errors import EdgepruneError
from edgeprune.schemas import DeviceFingerprint, Measurement

ENV_BINARY = "EDGEPRUNE_BENCHMARK_MODEL"
ENV_APK = "EDGEPRUNE_DEMO_APK"
APP_PACKAGE = "org.edgeprune.demo"
APP_ACTIVITY = f"{APP_PACKAGE}/.BenchmarkActivity"
APP_TAG = "EdgepruneBenchmark"
REMOTE_ROOT = "/data/local/tmp"
ELF_MACHINE = {"arm64-v8a": 183, "armeabi-v7a": 40, "armeabi": 40, "x86_64": 62, "x86": 3}
_OPTIONS = {"port", "adb", "binary", "apk", "app", "big_cores", "cooldown", "delegate", "flavor", "timeout", "poll"}


def _signal_text(rc: int) -> str:
    names = {134: "SIGABRT", 135: "SIGBUS", 136: "SIGFPE", 137: "SIGKILL", 139: "SIGSEGV"}
    return f"exit code {rc}" + (f", {names[rc]}" if rc in names else "")


def check_elf(path: Path, abi: str) -> None:
    """The binary must be an ELF executable for the device's ABI (e.g. not the x86 build or an APK)."""
    head = path.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        raise EdgepruneError(f"{path} is not an ELF executable",
                             "pass the Android benchmark_model binary itself "
                             "(e.g. android_aarch64_benchmark_model)")  # fmt: skip
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    want = ELF_MACHINE.get(abi)
    if want is not None and machine != want:
        raise EdgepruneError(f"{path.name} is built for ELF machine {machine}, but the device ABI is {abi}",
                             f"use the benchmark_model build for {abi}")  # fmt: skip


@register_device
class AdbDevice(Device):
    """An Android device reached through adb (serial None = the only connected one)."""

    kind = "adb"
    timing_note = "an Android phone: benchmark_model or the demo app, optional big-core pinning and cool-down"

    def __init__(self, serial: str | None = None, options: dict[str, str] | None = None,
                 client: AdbClient | None = None) -> None:  # fmt: skip
        self.options = dict(options or {})
        unknown = set(self.options) - _OPTIONS
        if unknown:
            raise EdgepruneError(f"unknown adb option(s): {', '.join(sorted(unknown))}",
                                 f"known: {', '.join(sorted(_OPTIONS))}")  # fmt: skip
        port = self.options.get("port")
        self.client = client or AdbClient(self.options.get("adb"), int(port) if port else None)
        self.serial = serial
        self.timeout_s = float(self.options.get("timeout", 600))
        self.poll_s = float(self.options.get("poll", 1.0))
        self.flavor = self.options.get("flavor", "tflite")
        if self.flavor not in ("tflite", "litert"):
            raise EdgepruneError(
                f"unknown benchmark_model flavor '{self.flavor}'", "use flavor=tflite or flavor=litert"
            )

    @classmethod
    def from_spec(cls, arg: str | None) -> AdbDevice:
        serial, options = split_options(arg)
        return cls(serial, options)

    # ---- small device queries ---------------------------------------------------------------------------------
    def _sh(self, serial: str, cmd: str | list[str], what: str, timeout: float | None = None) -> ShellResult:
        res = self.client.shell(serial, cmd, timeout=timeout)
        if res.rc != 0:
            raise EdgepruneError(f"{what} failed on {serial} ({_signal_text(res.rc)}): {res.tail()}",
                                 "check the device with `adb shell` and retry")  # fmt: skip
        return res

    def _cleanup(self, serial: str, cmd: list[str]) -> None:
        """Best effort: a vanished device must not hide the error that brought us here."""
        try:
            self.client.shell(serial, cmd, timeout=60)
        except EdgepruneError:
            pass

    def battery_temp_c(self, serial: str) -> float | None:
        m = re.search(r"^\s*temperature:\s*(-?\d+)", self.client.shell(serial, "dumpsys battery").stdout, re.M)
        return int(m.group(1)) / 10.0 if m else None

    def fingerprint(self, serial: str | None = None) -> DeviceFingerprint:
        serial = serial or self.client.select(self.serial)
        props = dict(re.findall(r"^\[([^\]]+)\]: \[([^\]]*)\]", self.client.shell(serial, "getprop").stdout, re.M))
        gov = self.client.shell(serial, "cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
        possible = self.client.shell(serial, "cat /sys/devices/system/cpu/possible").stdout.strip()
        cores = sum(int(b or a) - int(a) + 1 for a, b in re.findall(r"(\d+)(?:-(\d+))?", possible)) or None
        release, sdk = props.get("ro.build.version.release", ""), props.get("ro.build.version.sdk", "")
        return DeviceFingerprint(
            kind=self.kind, id=serial, model=props.get("ro.product.model", ""),
            abi=props.get("ro.product.cpu.abi", ""), os=f"Android {release}" + (f" (API {sdk})" if sdk else ""),
            soc=props.get("ro.soc.model") or props.get("ro.board.platform") or props.get("ro.hardware", ""),
            cores=cores, cpu_governor=gov.stdout.strip() if gov.rc == 0 else "",
            battery_temp_c=self.battery_temp_c(serial), manufacturer=props.get("ro.product.manufacturer", ""),
            soc_manufacturer=props.get("ro.soc.manufacturer", ""), build=props.get("ro.build.fingerprint", ""),
        )  # fmt: skip

    def big_core_mask(self, serial: str) -> tuple[str, list[int]]:
        """taskset mask of every core faster than the slowest cluster (all cores on a uniform CPU)."""
        res = self.client.shell(serial, "grep -H . /sys/devices/system/cpu/cpu*/cpufreq/cpuinfo_max_freq")
        freqs = {int(c): int(f) for c, f in re.findall(r"/cpu(\d+)/cpufreq/cpuinfo_max_freq:(\d+)", res.stdout)}
        if not freqs:
            raise EdgepruneError(f"cannot read the CPU frequencies of {serial}", "run without big_cores")
        slowest = min(freqs.values())
        big = sorted(c for c, f in freqs.items() if f > slowest) or sorted(freqs)
        return format(sum(1 << c for c in big), "x"), big

    def cool_down(self, serial: str, target_c: float, timeout_s: float) -> dict[str, Any]:
        """Poll the battery temperature until it is below ``target_c`` (bounded by ``timeout_s``)."""
        t0 = time.monotonic()
        first = temp = self.battery_temp_c(serial)
        while temp is not None and temp >= target_c and time.monotonic() - t0 < timeout_s:
            time.sleep(self.poll_s)
            temp = self.battery_temp_c(serial)
        return {"target_c": target_c, "start_c": first, "end_c": temp, "waited_s": round(time.monotonic() - t0, 3),
                "reached": None if temp is None else temp < target_c}  # fmt: skip

    # ---- settings: device spec options win over the BenchSpec ---------------------------------------------------
    def _settings(self, spec: BenchSpec) -> dict[str, Any]:
        o = self.options
        binary = o.get("binary") or spec.benchmark_binary or os.environ.get(ENV_BINARY)
        cooldown = o.get("cooldown")
        return {"delegate": o.get("delegate", spec.delegate).lower(),
                "big_cores": option_bool(o.get("big_cores")) or spec.big_cores,
                "cooldown_c": float(cooldown) if cooldown else spec.cooldown_c, "binary": binary,
                "via_app": option_bool(o.get("app")) or spec.via_app}  # fmt: skip

    def _flags(self, delegate: str) -> list[str]:
        if self.flavor == "litert":
            table = {"xnnpack": ["--use_cpu=true"], "gpu": ["--use_gpu=true"]}
        else:
            table = {"xnnpack": ["--use_xnnpack=true"], "none": ["--use_xnnpack=false"], "gpu": ["--use_gpu=true"],
                     "nnapi": ["--use_nnapi=true"]}  # fmt: skip
        if delegate not in table:
            raise EdgepruneError(f"delegate '{delegate}' is not available with the {self.flavor} benchmark_model",
                                 f"use one of: {', '.join(table)}")  # fmt: skip
        return table[delegate]

    # ---- benchmark ----------------------------------------------------------------------------------------------
    def benchmark(self, model_path: Path, spec: BenchSpec, artifact_name: str,
                  artifact_sha256: str) -> list[Measurement]:  # fmt: skip
        model_path = Path(model_path)
        if not model_path.is_file():
            raise EdgepruneError(f"model file not found: {model_path}", "pass the path of an exported .tflite file")
        serial = self.client.select(self.serial)
        cfg = self._settings(spec)
        if cfg["via_app"]:
            return self._benchmark_app(serial, model_path, spec, cfg, artifact_name, artifact_sha256)
        if not cfg["binary"]:
            raise EdgepruneError("no benchmark_model binary was given for the adb device "
                                 "(edgeprune never downloads it)",
                                 f"set {ENV_BINARY}=/path/to/android_aarch64_benchmark_model "
                                 "or pass binary=PATH")  # fmt: skip
        binary = Path(cfg["binary"]).expanduser()
        if not binary.is_file():
            raise EdgepruneError(
                f"benchmark_model binary not found: {binary}", f"fix {ENV_BINARY} or the binary= option"
            )
        device = self.fingerprint(serial)
        check_elf(binary, device.abi)
        flags = self._flags(cfg["delegate"])
        work = f"{REMOTE_ROOT}/edgeprune-{uuid.uuid4().hex[:8]}"
        try:
            self._sh(serial, ["mkdir", "-p", work], "creating " + work)
            self.client.push(serial, binary, f"{work}/benchmark_model")
            self._sh(serial, ["chmod", "755", f"{work}/benchmark_model"], "chmod of benchmark_model")
            self.client.push(serial, model_path, f"{work}/model.tflite")
            mask, big = self.big_core_mask(serial) if cfg["big_cores"] else ("", [])
            out = []
            for threads in spec.threads:
                extra: dict[str, Any] = {"adb_serial": serial, "benchmark_flavor": self.flavor}
                if cfg["cooldown_c"] is not None:
                    extra["cooldown"] = self.cool_down(serial, cfg["cooldown_c"], spec.cooldown_timeout_s)
                if mask:
                    extra.update(taskset_mask=mask, pinned_cores=big)
                cmd = (["taskset", mask] if mask else []) + [f"{work}/benchmark_model", f"--graph={work}/model.tflite",
                       f"--num_threads={threads}", f"--warmup_runs={spec.warmup}", "--warmup_min_secs=0",
                       f"--num_runs={spec.runs}", "--min_secs=0", *flags]  # fmt: skip
                if self.flavor == "tflite":
                    cmd.append("--report_peak_memory_footprint=true")
                    if spec.op_profiling:
                        cmd += ["--enable_op_profiling=true", f"--profiling_output_csv_file={work}/ops.csv"]
                extra["command"] = " ".join(cmd)
                res = self.client.shell(serial, cmd, timeout=self.timeout_s)
                if res.rc != 0:
                    raise EdgepruneError(
                        f"benchmark_model failed on {serial} for {model_path.name} (threads={threads}, "
                        f"{_signal_text(res.rc)}): {res.tail()}",
                        "check that the binary matches the model's ops and the delegate flags, then rerun by hand: "
                        f"adb -s {serial} shell {extra['command']}",
                    )
                out.append(self._measurement(serial, res, spec, threads, cfg, device, extra, work,
                                             artifact_name, artifact_sha256))  # fmt: skip
            return out
        finally:
            self._cleanup(serial, ["rm", "-rf", work])

    def _measurement(self, serial: str, res: ShellResult, spec: BenchSpec, threads: int, cfg: dict[str, Any],
                     device: DeviceFingerprint, extra: dict[str, Any], work: str, name: str,
                     sha: str) -> Measurement:  # fmt: skip
        parsed = parse_benchmark_output(res.stdout + "\n" + res.stderr)
        if spec.op_profiling and self.flavor == "tflite":
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    csv = self.client.pull(serial, f"{work}/ops.csv", Path(tmp) / "ops.csv").read_text(errors="replace")
                profile = parse_op_profile(csv)
                parsed.ops, parsed.ops_by_type = profile.ops or parsed.ops, profile.ops_by_type or parsed.ops_by_type
            except EdgepruneError as exc:  # an older tool prints the tables instead of writing the file
                extra["op_profile_file"] = f"not pulled: {exc.problem}"
        latency, notes = summary_latency(parsed)
        extra.update(notes, benchmark_model=parsed.summary())
        if cfg["delegate"] in ("gpu", "nnapi"):
            extra["delegate_applied"] = bool(parsed.delegations)
        elif cfg["delegate"] == "xnnpack":
            extra["delegate_applied"] = parsed.xnnpack_created or parsed.format == "litert"
        runtime = "benchmark_model (LiteRT CompiledModel)" if parsed.format == "litert" else "benchmark_model (TFLite)"
        return Measurement(
            artifact_name=name, artifact_sha256=sha, device=device, runtime=runtime, threads=threads,
            delegate=cfg["delegate"], warmup=parsed.warmup.count if parsed.warmup else spec.warmup,
            runs=parsed.inference.count if parsed.inference else 0, latency=latency, init_ms=parsed.init_ms,
            first_inference_ms=parsed.first_inference_ms, peak_rss_mb=parsed.peak_memory_mb,
            load_delta_mb=parsed.init_footprint_mb, extra=extra,
        )  # fmt: skip

    # ---- the demo app's headless BenchmarkActivity ----------------------------------------------------------------
    def _ensure_app(self, serial: str) -> None:
        listed = self.client.shell(serial, ["pm", "list", "packages", APP_PACKAGE]).stdout
        if f"package:{APP_PACKAGE}" in listed.split():
            return
        apk = self.options.get("apk") or os.environ.get(ENV_APK)
        if not apk:
            raise EdgepruneError(f"the edgeprune demo app ({APP_PACKAGE}) is not installed on {serial}",
                                 f"build apps/android and install it, or set {ENV_APK}=/path/to/app.apk")  # fmt: skip
        self.client.install(serial, apk)

    def _wait_for_app(self, serial: str, out_name: str) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.timeout_s:
            log = self.client.shell(serial, ["logcat", "-d", "-s", f"{APP_TAG}:*"]).stdout
            for line in log.splitlines():
                if "EDGEPRUNE_BENCHMARK_FAILED" in line:
                    raise EdgepruneError(f"the demo app's benchmark failed on {serial}: "
                                         f"{line.split('EDGEPRUNE_BENCHMARK_FAILED', 1)[1].strip()}",
                                         "check `adb logcat -s EdgepruneBenchmark` on the device")  # fmt: skip
                if "EDGEPRUNE_BENCHMARK_DONE" in line and line.rstrip().endswith("/" + out_name):
                    return
            if self.client.shell(serial, ["run-as", APP_PACKAGE, "ls", f"files/{out_name}"]).rc == 0:
                return
            time.sleep(self.poll_s)
        raise EdgepruneError(f"the demo app did not finish its benchmark on {serial} within {self.timeout_s:g} s",
                             "check the screen is on and unlocked, or raise the timeout= option")  # fmt: skip

    def _benchmark_app(self, serial: str, model_path: Path, spec: BenchSpec, cfg: dict[str, Any],
                       name: str, sha: str) -> list[Measurement]:  # fmt: skip
        if cfg["delegate"] not in ("xnnpack", "gpu", "none"):
            raise EdgepruneError(f"the demo app has no '{cfg['delegate']}' delegate", "use xnnpack, gpu or none")
        self._ensure_app(serial)
        tag = uuid.uuid4().hex[:8]
        staged, app_model = f"{REMOTE_ROOT}/edgeprune-{tag}.tflite", f"edgeprune-{tag}.tflite"
        out = []
        try:
            self.client.push(serial, model_path, staged)
            self._sh(
                serial, ["run-as", APP_PACKAGE, "cp", staged, f"files/{app_model}"], "copying the model to the app"
            )
            for threads in spec.threads:
                extra: dict[str, Any] = {"adb_serial": serial}
                if cfg["cooldown_c"] is not None:
                    extra["cooldown"] = self.cool_down(serial, cfg["cooldown_c"], spec.cooldown_timeout_s)
                result = f"edgeprune-{tag}-t{threads}.json"
                self.client.shell(serial, ["logcat", "-c"])
                start = self.client.shell(serial, ["am", "start", "-n", APP_ACTIVITY,
                    "--es", "model", f"/data/user/0/{APP_PACKAGE}/files/{app_model}", "--ei", "threads", str(threads),
                    "--ei", "warmup", str(spec.warmup), "--ei", "runs", str(spec.runs), "--es", "delegate",
                    cfg["delegate"], "--es", "out", result])  # fmt: skip
                if start.rc != 0 or "Error" in start.stdout + start.stderr:
                    raise EdgepruneError(f"cannot start {APP_ACTIVITY} on {serial}: {start.tail()}",
                                         "reinstall the demo app (it must be a debuggable build)")  # fmt: skip
                self._wait_for_app(serial, result)
                text = self._sh(serial, ["run-as", APP_PACKAGE, "cat", f"files/{result}"], "reading the results").stdout
                self.client.shell(serial, ["run-as", APP_PACKAGE, "rm", "-f", f"files/{result}"])
                out.append(self._app_measurement(serial, text, sha, name, extra))
            return out
        finally:
            self._cleanup(serial, ["rm", "-f", staged])
            self._cleanup(serial, ["run-as", APP_PACKAGE, "rm", "-f", f"files/{app_model}"])

    def _app_measurement(self, serial: str, text: str, sha: str, name: str, extra: dict[str, Any]) -> Measurement:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EdgepruneError(f"the demo app wrote invalid JSON on {serial}: {exc}", "update the demo app") from None
        error = data.pop("error", None) if isinstance(data, dict) else None
        if error:
            raise EdgepruneError(f"the demo app's benchmark failed on {serial}: {error}",
                                 "install the Gradle 'litert' build of the app "
                                 "(the offline APK has no runtime)")  # fmt: skip
        try:
            m = Measurement.model_validate(data)
        except ValueError as exc:
            first = str(exc).splitlines()[:3]
            raise EdgepruneError(f"the demo app's results do not match the Measurement schema: {' '.join(first)}",
                                 "use a demo app built from the same edgeprune version") from None  # fmt: skip
        if m.artifact_sha256 and m.artifact_sha256 != sha:
            raise EdgepruneError(f"the app timed a different model (sha256 {m.artifact_sha256[:12]}…, "
                                 f"expected {sha[:12]}…)",
                                 "retry; the copy on the device was changed or truncated")  # fmt: skip
        return m.model_copy(update={"artifact_name": name, "artifact_sha256": sha, "extra": {**m.extra, **extra}})
