"""A throwaway PostgreSQL cluster from Debian's ``postgresql`` binaries (initdb + pg_ctl) on a loopback port.

Used by the test fixtures and by ``benchmarks/load_server.py --postgres``. As root, the cluster runs as
the ``postgres`` user (initdb refuses root); its directory is a fresh temp dir owned by that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The binaries or the postgres user are missing (the reason is the message)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


class ThrowawayPostgres:
    """``with ThrowawayPostgres() as pg: pg.create_database("x")`` -> a postgresql:// URL."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: "
                                      "apt-get install postgresql")
        self.bindir = bindir
        self.prefix: list[str] = []
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="edgeprune-pg-"))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError as exc:
                shutil.rmtree(self.base, ignore_errors=True)
                raise PostgresUnavailable("running as root but there is no 'postgres' user") from exc
            self.prefix = ["runuser", "-u", "postgres", "--"]
            os.chmod(self.base, 0o700)
            os.chown(self.base, user.pw_uid, user.pw_gid)
        self.data = self.base / "data"

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        subprocess.run([*self.prefix, str(self.bindir / tool), *args], check=True, capture_output=True,
                       timeout=timeout)

    def start(self) -> ThrowawayPostgres:
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "log"), "-w", "-t", "60", "-o", opts,
                      "start", timeout=90)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            detail = (getattr(exc, "stderr", b"") or b"").decode(errors="replace")
            self.stop()
            raise RuntimeError(f"could not start a throwaway PostgreSQL cluster: {exc}: {detail}") from exc
        return self

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", timeout=60)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
