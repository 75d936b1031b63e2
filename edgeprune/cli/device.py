"""`edgeprune device list` and `edgeprune device setup qemu-arm64`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgeprune.cli._common import console, handle_errors

device_app = typer.Typer(no_args_is_help=True, help="Profiling devices: list them, set up the emulated arm64 lane.")
setup_app = typer.Typer(no_args_is_help=True, help="Prepare a device kind that needs local files.")
device_app.add_typer(setup_app, name="setup")


@setup_app.command("qemu-arm64")
@handle_errors
def setup_qemu(
    cache: Annotated[
        Path | None, typer.Option("--cache", help="cache directory [env EDGEPRUNE_QEMU_ARM64_CACHE]"),
    ] = None,
    mirror: Annotated[
        str | None, typer.Option("--mirror", help="Debian mirror (default: this machine's apt mirror)"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="rebuild even if the cache is ready")] = False,
) -> None:
    """Debian arm64 userland + aarch64 ai-edge-litert under qemu-user, for parity checks (about 30-60 s)."""
    from edgeprune.devices.qemu_setup import setup_qemu_arm64

    env = setup_qemu_arm64(cache, mirror, force=force, log=lambda msg: console.print(f"  [dim]{msg}[/dim]"))
    table = Table(title="qemu-arm64 lane")
    table.add_column("key")
    table.add_column("value")
    table.add_row("cache", str(env.cache))
    for key in ("qemu", "python_version", "ai_edge_litert", "numpy", "suite", "setup_seconds"):
        table.add_row(key, str(env.info.get(key, "")))
    console.print(table)
    console.print("Use it with: edgeprune profile MODEL.tflite --device qemu-arm64  (parity and op support only; "
                  "its timings are not meaningful)")  # fmt: skip


def _status(kind: str, probe_adb: bool) -> tuple[str, str]:
    """(example spec, readiness) for one registered kind."""
    if kind == "host":
        return "host", "ready"
    if kind == "adb":
        from edgeprune.devices.adb import ENV_BINARY

        adb = os.environ.get("EDGEPRUNE_ADB") or shutil.which("adb")
        binary = os.environ.get(ENV_BINARY)
        parts = [f"adb: {adb}" if adb else "adb client missing (apt-get install adb)",
                 f"{ENV_BINARY}={binary}" if binary else f"{ENV_BINARY} not set"]
        if probe_adb and adb:
            from edgeprune.devices.adb_client import AdbClient

            found = AdbClient(adb, timeout_s=20).devices()
            parts.append("devices: " + (", ".join(f"{d.serial} ({d.state})" for d in found) or "none"))
        return "adb[:SERIAL]", "; ".join(parts)
    if kind == "qemu-arm64":
        from edgeprune.devices.qemu_setup import default_cache, find_env

        env = find_env()
        return "qemu-arm64", (f"ready in {env.cache} (parity only)" if env else
                              f"not set up in {default_cache()}: run edgeprune device setup qemu-arm64")  # fmt: skip
    if kind == "ssh":
        return "ssh:user@host[:port]", "ssh client found" if shutil.which("ssh") else "ssh client missing"
    return kind, "registered"


@device_app.command("list")
@handle_errors
def list_devices(
    adb: Annotated[bool, typer.Option("--adb", help="also ask the adb server which phones are connected")] = False,
) -> None:
    """Registered device kinds and whether each is ready to use."""
    from edgeprune.devices import DEVICES

    table = Table(title="edgeprune devices")
    for col in ("kind", "spec", "status"):
        table.add_column(col)
    for kind, _ in DEVICES.items():
        spec, status = _status(kind, adb)
        table.add_row(kind, spec, status)
    console.print(table)
