"""Small measuring tools shared by the benchmark scripts: timers, percentiles, memory, load, children."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages: other work on the machine makes timings noisy."""
    return [round(x, 2) for x in os.getloadavg()]


def stats(samples: list[float]) -> dict[str, float]:
    """p50, p95, mean and max of latencies in seconds, reported in milliseconds."""
    if not samples:
        return {"n": 0}
    xs = sorted(samples)

    def pct(p: float) -> float:  # nearest-rank percentile
        return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]

    return {
        "n": len(xs),
        "p50_ms": round(pct(50) * 1000, 2),
        "p95_ms": round(pct(95) * 1000, 2),
        "mean_ms": round(sum(xs) / len(xs) * 1000, 2),
        "max_ms": round(xs[-1] * 1000, 2),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float:
    """Resident memory of this process now."""
    import psutil

    return round(psutil.Process().memory_info().rss / 2**20, 1)


def folder_mb(path: Path) -> float:
    """Bytes on disk under ``path`` in MiB (0 when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return 0.0
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import importlib.metadata as md

    import psutil

    versions = {}
    for dist in (
        "chromadb",
        "onnxruntime",
        "bm25s",
        "numpy",
        "tokenizers",
        "langchain-chroma",
        "langchain-core",
        "langchain-text-splitters",
    ):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def emit(result: dict[str, Any], out: str | None) -> None:
    """A child's result: written to ``out`` (JSON) and summarised on stderr."""
    text = json.dumps(result, indent=2, default=str)
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        print(text)


def run_child(
    module: str, args: list[str], *, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``python -m module args --out F`` in a fresh process; its JSON result plus wall time and exit code."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{os.getpid()}-{time.monotonic_ns()}.json"
    cmd = [sys.executable, "-m", module, *args, "--out", str(out)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            timeout=timeout,
            stdout=sys.stderr,
            stderr=sys.stderr,
        )
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    wall = time.perf_counter() - started
    result: dict[str, Any] = {}
    if out.exists():
        result = json.loads(out.read_text(encoding="utf-8"))
        out.unlink()
    result.setdefault("process_wall_s", round(wall, 2))
    if code != 0:
        result["error"] = f"{module} {' '.join(args)} exited with {code}"
    return result


# --- a Chroma server on loopback ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_chroma(path: Path, port: int, log: Path) -> subprocess.Popen:
    """``chroma run --path path --host 127.0.0.1 --port port``; waits for its heartbeat."""
    exe = Path(sys.executable).parent / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    log_file = open(log, "ab")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    log_file.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma run exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    stop_chroma(proc)
    raise RuntimeError(f"chroma run did not answer on port {port} within 120 s; see {log}")


def stop_chroma(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
