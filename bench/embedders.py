"""Benchmark the embedding backends on this machine (a script, not a test).

Embeds the same texts with every available backend (local = onnxruntime, st = sentence-transformers)
and reports chunks/s for 256- and 64-word-piece chunks, single-query latency, load time, and how far
the backends' vectors are apart. Writes bench/results/embedders.json.

    TIKTOKEN_CACHE_DIR=/work/shared/tiktoken-cache HF_HUB_OFFLINE=1 \\
        /tmp/stvenv/bin/python bench/embedders.py            # both backends (st needs torch)
    .venv/bin/python bench/embedders.py --backends local --quick

Texts are docstrings of the Python standard library (English prose, deterministic for a given
Python), cut with the MiniLM tokenizer into chunks of exactly 254 / 62 word pieces, i.e. 256 / 64
positions with [CLS] and [SEP]. Timings are medians over --reps passes; backends are interleaved in
every pass so they see the same background load, which is recorded with the results.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.adapters import embedders as emb  # noqa: E402 - after the sys.path line above

OUT = REPO / "bench" / "results" / "embedders.json"
QUERIES = [
    "What did the working group agree on freight corridors?",
    "When is the next meeting planned?",
    "Which sanctions were discussed?",
    "How much did bilateral trade grow last year?",
    "Who chaired the session in Moscow?",
]


def corpus_text() -> str:
    """Long English prose: the docstrings of the standard library's top-level modules."""
    docs = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 200:
                    docs.append(" ".join(doc.split()))
    return " ".join(docs)


def make_chunks(text: str, pieces: int, count: int) -> list[str]:
    """``count`` consecutive slices of ``text`` of exactly ``pieces`` MiniLM word pieces each."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(emb.locate_model_dir() / "tokenizer.json"))
    tok.no_truncation()
    offsets = tok.encode(text, add_special_tokens=False).offsets
    chunks, start = [], 0
    while len(chunks) < count:
        if start + pieces > len(offsets):
            start = 0  # wrap around: the corpus has ~1M word pieces, more than any default needs
        chunks.append(text[offsets[start][0] : offsets[start + pieces - 1][1]])
        start += pieces
    return chunks


def build(backend: str, cache_dir: Path | None = None, threads: int | None = None) -> Any:
    """A fresh embedder of ``backend`` (threads: None = the backend's default, all CPUs)."""
    if backend == "local":
        return emb.LocalOnnxEmbedder(cache_dir=cache_dir, threads=threads)
    if threads:
        import torch

        torch.set_num_threads(threads)
    return emb.SentenceTransformerEmbedder()


def available(backend: str) -> bool:
    """True when the backend can be imported here."""
    if backend == "st":
        import importlib.util

        return importlib.util.find_spec("sentence_transformers") is not None
    return True


def load_probe(backend: str, cache: str) -> dict[str, float]:
    """(Run in a fresh process) seconds to import the backend's libraries and to build the embedder."""
    t0 = time.perf_counter()
    if backend == "st":
        import sentence_transformers  # noqa: F401
    else:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    t1 = time.perf_counter()
    embedder = build(backend, Path(cache) if cache else None)
    t2 = time.perf_counter()
    embedder.embed(["warm up"])
    t3 = time.perf_counter()
    return {"import_s": t1 - t0, "load_s": t2 - t1, "first_call_s": t3 - t2, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """Peak resident memory of this process image (ru_maxrss would include the parent's before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_load(backend: str, reps: int) -> dict[str, Any]:
    """Median import/load times over ``reps`` fresh processes (local: warm and cold graph cache)."""
    variants = {"warm": None, "cold": None} if backend == "local" else {"": None}
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        warm_cache = Path(tmp) / "warm"
        if backend == "local":
            emb.LocalOnnxEmbedder(cache_dir=warm_cache)  # fill the cache once
        for variant in variants:
            runs = []
            for i in range(reps):
                cache = str(warm_cache) if variant == "warm" else str(Path(tmp) / f"cold{i}")
                cmd = [
                    sys.executable,
                    __file__,
                    "--load-probe",
                    backend,
                    "--cache",
                    cache if backend == "local" else "",
                ]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs.append(json.loads(out.strip().splitlines()[-1]))
            key = f"{variant}_cache" if variant else "default"
            result[key] = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    return result


def cpu_probe(backend: str, n256: int, n64: int, reps: int) -> dict[str, float]:
    """(Run in a fresh process) chunks per CPU-second on one thread: the cost of the work itself,
    which background load on a shared machine does not change (unlike wall-clock throughput)."""
    text = corpus_text()
    sets = {"256": make_chunks(text, 254, n256), "64": make_chunks(text, 62, n64)}
    embedder = build(backend, threads=1)
    embedder.embed(sets["64"][:32])
    out = {}
    for name, texts in sets.items():
        runs = []
        for _ in range(reps):
            start = time.process_time()
            embedder.embed(texts)
            runs.append(len(texts) / (time.process_time() - start))
        out[name] = round(statistics.median(runs), 2)
    return out


def measure_cpu(backend: str, args: argparse.Namespace) -> dict[str, float]:
    """Single-thread chunks per CPU-second, measured in a fresh process."""
    n256, n64 = max(32, args.n256 // 4), max(64, args.n64 // 4)
    cmd = [sys.executable, __file__, "--cpu-probe", backend, "--n256", str(n256), "--n64", str(n64)]
    cmd += ["--reps", str(args.reps)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def throughput(embedders: dict[str, Any], sets: dict[str, list[str]], reps: int) -> dict[str, dict[str, Any]]:
    """chunks/s per backend and set; backends interleaved within each pass."""
    times: dict[tuple[str, str], list[float]] = {(b, s): [] for b in embedders for s in sets}
    for _ in range(reps):
        for set_name, texts in sets.items():
            for name, embedder in embedders.items():
                time.sleep(0.3)  # let the other backend's spinning worker threads go idle
                start = time.perf_counter()
                embedder.embed(texts)
                times[(name, set_name)].append(time.perf_counter() - start)
    out: dict[str, dict[str, Any]] = {b: {} for b in embedders}
    for (name, set_name), runs in times.items():
        n = len(sets[set_name])
        out[name][set_name] = {
            "chunks_per_s": round(n / statistics.median(runs), 1),
            "runs_chunks_per_s": [round(n / t, 1) for t in runs],
        }
    return out


def query_latency(embedder: Any, calls: int) -> dict[str, float]:
    """p50/p95 ms of embedding one short query (distinct texts, so the query cache never answers)."""
    samples = []
    for i in range(calls):
        text = f"{QUERIES[i % len(QUERIES)]} ({i})"
        start = time.perf_counter()
        embedder.embed_query(text)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": round(samples[len(samples) // 2], 2),
        "p95_ms": round(samples[int(len(samples) * 0.95)], 2),
    }


def agreement(embedders: dict[str, Any], texts: list[str]) -> dict[str, dict[str, float]]:
    """Max abs difference and min cosine of every backend against the first."""
    names = list(embedders)
    base = embedders[names[0]].embed(texts)
    out = {}
    for name in names[1:]:
        other = embedders[name].embed(texts)
        out[f"{name}_vs_{names[0]}"] = {
            "texts": len(texts),
            "max_abs_diff": float(np.abs(other - base).max()),
            "min_cosine": float(np.min(np.sum(other * base, axis=1))),
        }
    return out


def environment() -> dict[str, Any]:
    """Versions and machine facts that the numbers depend on."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    for module in ("onnxruntime", "onnx", "tokenizers", "numpy", "torch", "sentence_transformers"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the JSON-ready results."""
    backends = [b for b in args.backends.split(",") if available(b)]
    text = corpus_text()
    sets = {"256": make_chunks(text, 254, args.n256), "64": make_chunks(text, 62, args.n64)}
    results: dict[str, Any] = {"environment": environment(), "backends": backends}
    results["settings"] = {"batch_size": 32, "reps": args.reps, "n256": args.n256, "n64": args.n64}
    results["load"] = {b: measure_load(b, args.load_reps) for b in backends}
    results["cpu_1thread_chunks_per_cpu_s"] = {b: measure_cpu(b, args) for b in backends}
    embedders = {b: build(b) for b in backends}
    for e in embedders.values():
        e.embed(sets["256"][:32])  # warm up allocators and thread pools
    results["throughput"] = throughput(embedders, sets, args.reps)
    results["query"] = {b: query_latency(e, args.queries) for b, e in embedders.items()}
    sample = sets["256"][:40] + sets["64"][:60] + QUERIES
    results["agreement"] = agreement(embedders, sample) if len(embedders) > 1 else {}
    results["environment"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def report(results: dict[str, Any]) -> None:
    """Print the results as a small table."""
    print(
        f"{'backend':8} {'256-wp/s':>9} {'64-wp/s':>9} {'query p50':>10} {'p95':>7} {'import s':>9} {'load s':>7}"
    )
    for b in results["backends"]:
        tp, q = results["throughput"][b], results["query"][b]
        load = results["load"][b].get("warm_cache") or results["load"][b]["default"]
        print(
            f"{b:8} {tp['256']['chunks_per_s']:9.1f} {tp['64']['chunks_per_s']:9.1f} {q['p50_ms']:8.2f}ms"
            f" {q['p95_ms']:5.2f}ms {load['import_s']:9.2f} {load['load_s']:7.2f}"
        )
    for b, cpu in results["cpu_1thread_chunks_per_cpu_s"].items():
        print(
            f"{b}: chunks per CPU-second on 1 thread (load-independent): 256-wp {cpu['256']}, 64-wp {cpu['64']}"
        )
    if "cold_cache" in results["load"].get("local", {}):
        print(
            f"local load with a cold graph cache (builds the ONNX graph): {results['load']['local']['cold_cache']}"
        )
    for pair, a in results["agreement"].items():
        print(
            f"{pair}: max abs diff {a['max_abs_diff']:.2e}, min cosine {a['min_cosine']:.7f} over {a['texts']} texts"
        )
    env = results["environment"]
    print(f"load average start {env['loadavg_start']} end {env['loadavg_end']} on {env['cpu_count']} CPUs")


def main() -> None:
    """Parse arguments, run, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="local,st", help="comma-separated: local, st")
    parser.add_argument("--n256", type=int, default=512, help="256-word-piece chunks per pass")
    parser.add_argument("--n64", type=int, default=2048, help="64-word-piece chunks per pass")
    parser.add_argument("--reps", type=int, default=3, help="timed passes (median reported)")
    parser.add_argument("--load-reps", type=int, default=3, help="fresh processes per load measurement")
    parser.add_argument("--queries", type=int, default=100, help="single-query calls timed")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--load-probe", help=argparse.SUPPRESS)
    parser.add_argument("--cache", default="", help=argparse.SUPPRESS)
    parser.add_argument("--cpu-probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_probe:
        print(json.dumps(load_probe(args.load_probe, args.cache)))
        return
    if args.cpu_probe:
        print(json.dumps(cpu_probe(args.cpu_probe, args.n256, args.n64, args.reps)))
        return
    if args.quick:
        args.n256, args.n64, args.reps, args.load_reps, args.queries = 64, 256, 1, 1, 20
    results = run(args)
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
