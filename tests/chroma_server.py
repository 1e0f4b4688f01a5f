"""A real ``chroma run`` server for integration tests (a pytest plugin).

``chroma_server`` (session scope) yields ``(host, port)``. When the environment
variable RAG_TEST_CHROMA_PORT is set (CI starts a server itself) it is used as
is; otherwise a server is started on a free port over a temporary folder and
terminated at the end of the session. ``start_chroma``, ``wait_ready`` and
``stop_chroma`` are public so crash-safety tests can kill and restart servers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

HOST = "127.0.0.1"
PORT_ENV = "RAG_TEST_CHROMA_PORT"


class ChromaProcess(subprocess.Popen):
    """A ``chroma run`` subprocess that remembers its log file, data folder and port."""

    log_path: Path
    data_path: Path
    host: str
    port: int
    _log: IO[bytes]


def chroma_executable() -> Path:
    """The ``chroma`` CLI installed next to the running Python."""
    bindir = Path(sys.executable).parent
    for name in ("chroma", "chroma.exe"):
        if (bindir / name).exists():
            return bindir / name
    raise FileNotFoundError(f"no chroma executable in {bindir}; is chromadb installed in this venv?")


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_chroma(
    path: str | Path, port: int, *, host: str = HOST, log: str | Path | None = None
) -> ChromaProcess:
    """Start ``chroma run`` over ``path`` on ``host:port``; output goes to a log file beside ``path``."""
    data = Path(path)
    data.mkdir(parents=True, exist_ok=True)
    log_path = Path(log) if log else data.parent / f"{data.name}-chroma-{port}.log"
    # A file, not a pipe: a full pipe would block the server. stop_chroma closes it.
    log_file = open(log_path, "ab")  # noqa: SIM115
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    cmd = [str(chroma_executable()), "run", "--path", str(data), "--host", host, "--port", str(port)]
    proc = ChromaProcess(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    proc.log_path, proc.data_path, proc.host, proc.port, proc._log = log_path, data, host, port, log_file
    return proc


def log_tail(proc: Any, lines: int = 30) -> str:
    """The last lines of a started server's log ("" when there is none)."""
    path = getattr(proc, "log_path", None)
    if path is None or not Path(path).exists():
        return ""
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def heartbeat(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when GET /api/v2/heartbeat answers 200."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/api/v2/heartbeat", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_ready(host: str, port: int, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> float:
    """Wait until the server's heartbeat answers; return seconds waited or raise RuntimeError with its log."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if heartbeat(host, port):
            return time.monotonic() - start
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"chroma server on {host}:{port} exited with code {proc.returncode} before it was ready.\n"
                f"--- server output ---\n{log_tail(proc)}"
            )
        time.sleep(0.1)
    raise RuntimeError(
        f"chroma server on {host}:{port} did not answer /api/v2/heartbeat within {timeout:.0f} s.\n"
        f"--- server output ---\n{log_tail(proc)}"
    )


def stop_chroma(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate the server (kill it if it does not exit in ``timeout`` s) and close its log."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    log = getattr(proc, "_log", None)
    if log is not None:
        log.close()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """(host, port) of a running Chroma server for the whole session."""
    external = os.environ.get(PORT_ENV)
    if external:
        port = int(external)
        try:
            wait_ready(HOST, port, timeout=10)
        except RuntimeError as exc:
            pytest.fail(f"{PORT_ENV}={external} is set but no Chroma server answers there: {exc}")
        yield HOST, port
        return
    port = free_port()
    proc = start_chroma(tmp_path_factory.mktemp("chroma") / "data", port)
    try:
        wait_ready(HOST, port, timeout=60, proc=proc)
    except RuntimeError as exc:
        stop_chroma(proc)
        pytest.fail(str(exc))
    try:
        yield HOST, port
    finally:
        stop_chroma(proc)
