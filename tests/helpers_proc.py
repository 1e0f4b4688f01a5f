"""Process helpers for the reliability, security and bad-input tests.

* ``run_cli`` / ``start_cli``: the real ``python -m rag.cli`` in a child process with the
  test's (isolated) environment; ``sigkill`` ends one for good.
* ``write_reports``: a folder of real-ish reports (txt, md, html) built at test time from the
  MultiHop-RAG news corpus in ``../shared/datasets`` (``None`` when it is absent).
* ``store_state`` / ``problems``: everything a store holds, and the ways it can be inconsistent
  (a partial report, an orphan chunk that is not being repaired, a duplicate).
* ``python -m tests.helpers_proc reader ...``: a search loop run as a separate process for the
  concurrency tests; it writes its latencies, errors and hits as JSON when told to stop.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "datasets" / "multihop-rag" / "corpus.json"
RAG = [sys.executable, "-m", "rag.cli"]


# --- the CLI in a child process ----------------------------------------------------------------


def cli_env(store: Path | None = None, **extra: str | None) -> dict[str, str]:
    """A clean environment for a child process: no RAG_/OPENAI_ settings but ``store`` and ``extra``.

    Built here rather than taken from the test's environment because module-scoped fixtures run
    before conftest's per-test isolation. ``None`` values remove a variable.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_"))}
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    cache = REPO.parent / "shared" / "tiktoken-cache"
    if cache.is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(cache)
    if store is not None:
        env["RAG_STORE"] = str(store)
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``rag ARGS`` to completion and capture its output."""
    return subprocess.run(
        [*RAG, *args], check=False, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout
    )


def _spawn(args: tuple[str, ...], env: dict[str, str], log: Path, stderr: Any) -> subprocess.Popen:
    """``rag ARGS`` in its own session, stdout to ``log``, stderr to ``stderr``."""
    out = open(log, "wb")  # noqa: SIM115 - the child owns it; closed by the OS when both are done
    try:
        return subprocess.Popen(
            [*RAG, *args],
            stdout=out,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )
    finally:
        out.close()


def start_cli(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``rag ARGS`` in the background, stdout and stderr to ``log`` (a pipe could fill and block it)."""
    return _spawn(args, env, log, subprocess.STDOUT)


def start_cli_on_a_tty(*args: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    """Like ``start_cli`` but stderr is a pseudo-terminal, so the CLI draws its progress bar there.

    Returns the process and the pty's master end, to be read with ``wait_for_progress``.
    """
    import pty

    master, slave = pty.openpty()
    try:
        proc = _spawn(args, env, log, slave)
    finally:
        os.close(slave)
    return proc, master


def wait_for_progress(master: int, proc: subprocess.Popen, *, done: int, timeout: float = 300) -> str:
    """Read the progress bar until it reports at least ``done`` items; returns what was read."""
    import select

    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal (it exited)
                chunk = b""
            if not chunk and proc.poll() is not None:
                break
            seen += chunk
            counts = re.findall(rb"\] (\d+)/(\d+) ", seen)
            if counts and int(counts[-1][0]) >= done:
                return seen.decode(errors="replace")
        elif proc.poll() is not None:
            break
    raise AssertionError(f"no progress to {done} (exit code {proc.poll()}): {seen[-500:]!r}")


def sigkill(proc: subprocess.Popen) -> int | None:
    """SIGKILL ``proc`` (no cleanup handlers run) and reap it; returns its exit code if it had already exited."""
    already = proc.poll()
    if already is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return already


# --- real-ish reports --------------------------------------------------------------------------------


def corpus_articles() -> list[dict[str, Any]] | None:
    """The MultiHop-RAG news articles (title, body, published_at, source), or None when absent."""
    if not CORPUS.is_file():
        return None
    return json.loads(CORPUS.read_text(encoding="utf-8"))


def _trim(body: str, max_chars: int | None) -> str:
    if max_chars is None or len(body) <= max_chars:
        return body
    cut = body.rfind("\n", 0, max_chars)
    return body[: cut if cut > max_chars // 2 else max_chars].rstrip()


def write_reports(folder: Path, n: int, *, seed: int, max_chars: int | None = None) -> list[Path] | None:
    """``n`` news articles as report files (a third each txt, md, html); None without the corpus."""
    articles = corpus_articles()
    if articles is None:
        return None
    rng = random.Random(seed)
    picks = rng.sample([a for a in articles if len(a.get("body", "")) > 1500], n)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, art in enumerate(picks):
        title, date = art["title"].strip(), str(art.get("published_at", ""))[:10]
        body = _trim(art["body"], max_chars)
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "report"
        kind = ("txt", "md", "html")[i % 3]
        path = folder / f"{i:02d}-{slug}.{kind}"
        if kind == "txt":
            path.write_text(f"{title}\n\n{date}\n\n{body}\n", encoding="utf-8")
        elif kind == "md":
            path.write_text(
                f"---\ntitle: {title}\ndate: {date}\n---\n\n# {title}\n\n{body}\n", encoding="utf-8"
            )
        else:
            paras = "".join(f"<p>{escape(p)}</p>\n" for p in body.split("\n") if p.strip())
            path.write_text(
                f'<html><head><title>{escape(title)}</title><meta property="article:published_time" '
                f'content="{date}"></head><body><nav>Home | World</nav><article><h1>{escape(title)}</h1>\n'
                f"{paras}</article><script>track('{i}')</script></body></html>\n",
                encoding="utf-8",
            )
        paths.append(path)
    return paths


def title_of(path: Path) -> str:
    """The title ``write_reports`` gave a report file (a natural query for it)."""
    from html import unescape

    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return text.split("title: ", 1)[1].split("\n", 1)[0]
    if path.suffix == ".html":
        return unescape(text.split("<title>", 1)[1].split("</title>", 1)[0])
    return text.split("\n", 1)[0]


# --- what a store holds ---------------------------------------------------------------------------


@dataclass
class StoreState:
    """Every record of a store, read through its own API (committed, chunks) and raw (pending notes)."""

    committed: dict[str, tuple[str, int]]  # source -> (doc_id, chunks recorded at commit)
    chunks: list[tuple[str, str, int, str, str]]  # (chunk_id, source, index, doc_id, text)
    pending: set[str] = field(default_factory=set)  # sources with an unfinished write
    generation: int = 0

    def visible(self) -> list[tuple[str, str, int, str, str]]:
        """Chunks of committed report versions (what readers may use)."""
        return [c for c in self.chunks if self.committed.get(c[1], ("", 0))[0] == c[3]]

    def ids_and_texts(self) -> set[tuple[str, str]]:
        return {(c[0], c[4]) for c in self.chunks}


def store_state(store: Any) -> StoreState:
    """Read every record of a ``rag.adapters.chroma.Store``."""
    committed = {s: (i.doc_id, i.chunks) for s, i in store.committed().items()}
    chunks = [(c.chunk_id, c.source, c.index, c.doc_id, c.text) for c in store.iter_chunks()]
    raw = store.docs.get(include=["metadatas"])
    pending = {m["source"] for rid, m in zip(raw["ids"], raw["metadatas"]) if rid.startswith("pending:")}
    return StoreState(committed, chunks, pending, store.generation())


def problems(state: StoreState, *, allow_pending: bool) -> list[str]:
    """Ways the store is inconsistent (empty when it is sound).

    A committed report must have exactly its recorded chunks, indexes 0..n-1, once each.
    Chunks of no committed version (orphans) are allowed only while a pending note says
    the write that left them will be repaired (``allow_pending``: right after a crash).
    """
    out: list[str] = []
    ids = [c[0] for c in state.chunks]
    if len(ids) != len(set(ids)):
        out.append(f"{len(ids) - len(set(ids))} duplicate chunk ids")
    by_source: dict[str, list[int]] = {}
    for _cid, source, index, _doc, _text in state.visible():
        by_source.setdefault(source, []).append(index)
    for source, (_doc_id, n) in state.committed.items():
        got = sorted(by_source.get(source, []))
        if got != list(range(n)):
            out.append(
                f"{source}: recorded {n} chunks, found indexes {got[:10]}{'...' if len(got) > 10 else ''}"
            )
    visible = {c[0] for c in state.visible()}
    orphans = {c[1] for c in state.chunks if c[0] not in visible}
    unexplained = orphans - state.pending if allow_pending else orphans
    if unexplained:
        out.append(f"orphan chunks of {sorted(unexplained)} with no pending write to repair them")
    if not allow_pending and state.pending:
        out.append(f"pending writes left: {sorted(state.pending)}")
    return out


def open_store_copy(store: Path, dest: Path, embedder: Any, **settings: Any) -> Any:
    """A pipeline on a copy of ``store``: a fresh Chroma client, as a new process would open it.

    Chroma keeps one client per folder per process, with its vector index in memory; a copy is how
    this process sees exactly what another process (or a crash) left on disk.
    """
    import shutil

    from rag.config import Settings
    from rag.pipeline import build_pipeline

    if store.exists():
        shutil.copytree(store, dest)
    return build_pipeline(Settings(store=dest, **settings), embedder=embedder)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    vals = sorted(values)
    rank = max(1, min(len(vals), round(q / 100 * len(vals) + 0.5)))
    return vals[rank - 1]


# --- a reader process -------------------------------------------------------------------------------


def _reader(args: argparse.Namespace) -> int:
    """Search in a loop until the stop file appears; then one more round; write a JSON report."""
    from rag.config import Settings
    from rag.errors import RagError
    from rag.pipeline import build_pipeline

    queries = json.loads(Path(args.queries).read_text(encoding="utf-8"))
    pipe = build_pipeline(Settings.from_env())
    Path(args.ready).write_text(str(os.getpid()))
    latencies: list[float] = []
    started: list[float] = []  # wall-clock start of each query, to count those that overlapped the writer
    errors: list[str] = []
    hits: dict[str, list[str]] = {}  # chunk_id -> [source, doc_id]
    methods = ("hybrid", "dense", "bm25")
    n, last_round = 0, False
    deadline = time.monotonic() + args.max_seconds
    while time.monotonic() < deadline:
        stopping = Path(args.stop).exists()
        for q in queries:
            method = methods[n % len(methods)]
            n += 1
            started.append(time.time())
            t0 = time.perf_counter()
            try:
                versions: dict[str, set[str]] = {}
                for h in pipe.search(q, method=method):
                    hits[h.chunk.chunk_id] = [h.chunk.source, h.chunk.doc_id]
                    versions.setdefault(h.chunk.source, set()).add(h.chunk.doc_id)
                mixed = sorted(s for s, ids in versions.items() if len(ids) > 1)
                if mixed:
                    errors.append(f"MIXED VERSIONS of {mixed} in one result for {q!r}")
            except RagError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001 - the test wants every failure, by kind
                errors.append(f"UNEXPECTED {type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - t0)
            time.sleep(args.pause)  # a person types between questions; leave the writer some CPU
        if last_round:
            break
        last_round = stopping
    report = {
        "latencies": latencies,
        "started": started,
        "errors": errors,
        "hits": hits,
        "reports_seen": pipe.retriever.snapshot().sources,
    }
    Path(args.out).write_text(json.dumps(report), encoding="utf-8")
    return 0


def reader_command(
    *, queries: Path, ready: Path, stop: Path, out: Path, max_seconds: float = 300
) -> list[str]:
    """argv of a reader process (see ``_reader``)."""
    return [
        sys.executable,
        "-m",
        "tests.helpers_proc",
        "reader",
        "--queries",
        str(queries),
        "--ready",
        str(ready),
        "--stop",
        str(stop),
        "--out",
        str(out),
        "--max-seconds",
        str(max_seconds),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.helpers_proc")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("reader", help="search in a loop until --stop exists")
    for name in ("queries", "ready", "stop", "out"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--max-seconds", type=float, default=300)
    p.add_argument("--pause", type=float, default=0.02, help="seconds between two searches")
    args = parser.parse_args(argv)
    return _reader(args)


if __name__ == "__main__":
    sys.exit(main())
