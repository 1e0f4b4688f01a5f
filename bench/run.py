"""Dossier's benchmarks, end to end: ``.venv/bin/python -m bench.run`` (see BENCHMARKS.md).

    .venv/bin/python -m bench.run                          # full: 1k, 10k, 100k chunks (about 30-40 min)
    .venv/bin/python -m bench.run --quick                  # 1k and 5k chunks, fewer questions (about 5 min)
    .venv/bin/python -m bench.run --sizes 1000,10000 --ingest-chunks 1000

Every measurement runs in a fresh process. Results go to bench/results/bench-<time>.json (and
latest.json); a table of the figures and the targets is printed at the end. The machine's load
average is recorded with every figure, since other work on the machine makes timings noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench import corpus
from bench.measure import REPO, free_port, load, machine, run_child, start_chroma, stop_chroma

RESULTS = REPO / "bench" / "results"
TARGETS = {
    "ingest_ratio_min": 0.9,  # pipeline chunks/s over raw embedder chunks/s, same run
    "ask_p50_ms": 150,
    "ask_p95_ms": 400,
    "search_p50_ms": 60,  # warm, at the largest size (100k)
    "peak_rss_mb": 1536,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}  (load {load()})", file=sys.stderr, flush=True)


def ingest_stage(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Throughput, server-mode ingest and the LangChain comparison on a real corpus."""
    port = free_port()
    server = (
        None if args.no_server else start_chroma(work / "server-ingest", port, work / "server-ingest.log")
    )
    try:
        extra = ["--server-port", str(port)] if server else []
        extra += ["--no-baseline"] if args.no_baseline else []
        return run_child(
            "bench.ingest_bench",
            [
                "--work",
                str(work),
                "--chunks",
                str(args.ingest_chunks),
                "--queries",
                str(args.ingest_queries),
                *extra,
            ],
            timeout=3600,
        )
    finally:
        if server:
            stop_chroma(server)


def size_stage(args: argparse.Namespace, work: Path, n: int) -> dict[str, Any]:
    """Build a store of n chunks, then cold start and warm latency, embedded and through a server."""
    store = work / "stores" / f"{n}"
    shutil.rmtree(store, ignore_errors=True)
    out: dict[str, Any] = {"chunks": n}
    log(f"{n}: building the store")
    out["build"] = run_child(
        "bench.query_bench",
        ["build", "--work", str(work), "--store", str(store), "--chunks", str(n)],
        timeout=7200,
    )
    if "error" in out["build"]:
        return out
    question = corpus.questions(1, skip=corpus.COLD_QUESTION)[0]
    log(f"{n}: cold start (no saved snapshot), then again (saved snapshot)")
    out["cold_first"] = run_child(
        "bench.query_bench", ["cold", "--store", str(store), "--question", question], timeout=3600
    )
    out["cold"] = run_child(
        "bench.query_bench", ["cold", "--store", str(store), "--question", question], timeout=3600
    )
    out["store_mb"] = out["build"].get("store_mb")
    log(f"{n}: warm latency, embedded")
    out["embedded"] = run_child(
        "bench.query_bench", ["latency", "--store", str(store), "--queries", str(args.queries)], timeout=3600
    )
    if not args.no_server:
        port = free_port()
        log(f"{n}: warm latency, Chroma server on 127.0.0.1:{port} over the same folder")
        server = start_chroma(store, port, work / f"server-{n}.log")
        try:
            out["server"] = run_child(
                "bench.query_bench",
                [
                    "latency",
                    "--store",
                    str(store),
                    "--server-port",
                    str(port),
                    "--queries",
                    str(args.server_queries),
                ],
                timeout=3600,
            )
            out["server"]["server_rss_mb"] = _rss_of(server.pid)
        finally:
            stop_chroma(server)
    if not args.keep:
        shutil.rmtree(store, ignore_errors=True)
    return out


def _rss_of(pid: int) -> float | None:
    try:
        import psutil

        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except Exception:
        return None


def verdicts(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target, the figure measured against it, and whether it is met."""
    rows = []
    ing = result.get("ingest", {})
    ratio = ing.get("throughput", {}).get("ratio_pipeline_to_raw")
    rows.append(
        {
            "target": "pipeline ingest >= 0.9 x raw embedder",
            "value": ratio,
            "met": ratio is not None and ratio >= TARGETS["ingest_ratio_min"],
        }
    )
    lc = ing.get("langchain_ingest", {})
    if lc:
        rows.append(
            {
                "target": "ingest at least as fast as LangChain (same corpus, wall time)",
                "value": lc.get("pipeline_speedup_same_corpus"),
                "met": (lc.get("pipeline_speedup_same_corpus") or 0) >= 1.0,
            }
        )
        q = ing.get("query_same_corpus", {})
        ours, theirs = (
            q.get("embedded_search_hybrid", {}).get("p50_ms"),
            q.get("langchain_similarity_search", {}).get("p50_ms"),
        )
        if ours and theirs:
            rows.append(
                {
                    "target": "search at least as fast as LangChain similarity_search (p50)",
                    "value": round(theirs / ours, 3),
                    "met": ours <= theirs,
                }
            )
    sizes = result.get("sizes", [])
    if sizes:
        top = sizes[-1]
        emb = top.get("embedded", {})
        n = top["chunks"]
        for key, stat, limit in (
            ("ask", "p50_ms", "ask_p50_ms"),
            ("ask", "p95_ms", "ask_p95_ms"),
            ("search", "p50_ms", "search_p50_ms"),
        ):
            v = emb.get(key, {}).get(stat)
            rows.append(
                {
                    "target": f"{key} {stat} < {TARGETS[limit]} ms at {n} chunks",
                    "value": v,
                    "met": v is not None and v < TARGETS[limit],
                }
            )
        rss = emb.get("peak_rss_mb")
        rows.append(
            {
                "target": f"peak RSS < 1.5 GB at {n} chunks",
                "value": rss,
                "met": rss is not None and rss < TARGETS["peak_rss_mb"],
            }
        )
    return rows


def table(result: dict[str, Any]) -> str:
    """The figures as Markdown (also pasted into BENCHMARKS.md)."""
    lines = []
    ing = result.get("ingest", {})
    th = ing.get("throughput", {})
    if th:
        lines += [
            "| ingest (same texts, one process) | value |",
            "|---|---|",
            f"| corpus | {ing['corpus']['files']} files in {ing['corpus']['parts']} parts, {ing['corpus']['chunks']} chunks, "
            f"{ing['corpus']['mean_tokens_per_chunk']} word pieces/chunk |",
            f"| raw embedder chunks/s | {th['raw_embedder_chunks_per_s']} |",
            f"| pipeline chunks/s | {th['pipeline_chunks_per_s']} |",
            f"| ratio pipeline / raw | {th['ratio_pipeline_to_raw']} |",
            f"| load, chunk alone (s) | {ing['stages_alone']['load_s']}, {ing['stages_alone']['chunk_s']} |",
            f"| Store.write inside pipeline (s) | {th['store_write_s_inside_pipeline']} |",
        ]
        if "server_ingest" in ing:
            s = ing["server_ingest"]
            lines.append(
                f"| server-mode pipeline chunks/s (ratio to raw, to embedded) | {s['chunks_per_s']} "
                f"({s['ratio_to_raw']}, {s['ratio_to_embedded_pipeline']}) |"
            )
        if "langchain_ingest" in ing:
            lc = ing["langchain_ingest"]
            lines.append(
                f"| LangChain: chunks, word pieces, seconds, chunks/s | {lc['chunks']}, {lc['tokens']}, "
                f"{lc['seconds']}, {lc['chunks_per_s']} (Dossier: {ing['corpus']['chunks']}, "
                f"{lc['dossier_tokens']}, {th['pipeline_seconds']}) |"
            )
            lines.append(
                f"| Dossier speed-up over LangChain (wall, chunks/s) | {lc['pipeline_speedup_same_corpus']}, "
                f"{lc['pipeline_speedup_chunks_per_s']} |"
            )
            ours_tps = lc["dossier_tokens"] / th["pipeline_seconds"]
            theirs_tps = lc["tokens"] / lc["seconds"]
            lines.append(
                f"| word pieces embedded per second: Dossier, LangChain (ratio) | {ours_tps:.0f}, "
                f"{theirs_tps:.0f} ({ours_tps / theirs_tps:.3f}) |"
            )
        lines.append(f"| load average during ingest | {th.get('load')} |")
        q = ing.get("query_same_corpus", {})
        if q:
            lines += [
                "",
                f"| query, same {ing['corpus']['chunks']}-chunk corpus | p50 ms | p95 ms | load |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {name} | {v.get('p50_ms')} | {v.get('p95_ms')} | {v.get('load')} |"
                for name, v in q.items()
            ]
    sizes = result.get("sizes", [])
    if sizes:
        lines += [
            "",
            "| chunks | search p50/p95 ms | ask p50/p95 ms | ask: retrieve / extract ms | repeated search "
            "p50 | date-filter search p50 | server search p50/p95 | server ask p50/p95 | peak RSS MB | store MB "
            "| cold start s (first / later) | build s | load |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in sizes:
            e, v = s.get("embedded", {}), s.get("server", {})
            st = e.get("ask", {}).get("stage_median_ms", {})
            lines.append(
                f"| {s['chunks']} | {_pp(e.get('search'))} | {_pp(e.get('ask'))} | {st.get('retrieve')} / "
                f"{st.get('extract')} | {e.get('search_repeated', {}).get('p50_ms')} | "
                f"{e.get('search_date_filter', {}).get('p50_ms')} | {_pp(v.get('search'))} | {_pp(v.get('ask'))} | "
                f"{e.get('peak_rss_mb')} | {s.get('store_mb')} | {s.get('cold_first', {}).get('process_wall_s')} / "
                f"{s.get('cold', {}).get('process_wall_s')} | {s.get('build', {}).get('seconds')} | "
                f"{e.get('load_start')} |"
            )
    rows = verdicts(result)
    if rows:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {r['target']} | {r['value']} | {'yes' if r['met'] else 'NO'} |" for r in rows]
    return "\n".join(lines)


def _pp(stat: dict | None) -> str:
    return f"{stat.get('p50_ms')} / {stat.get('p95_ms')}" if stat else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--sizes", default=None, help="store sizes in chunks, comma-separated (default 1000,10000,100000)"
    )
    ap.add_argument("--quick", action="store_true", help="small sizes and fewer questions (about 5 minutes)")
    ap.add_argument(
        "--ingest-chunks", type=int, default=None, help="chunks of real text for the throughput run"
    )
    ap.add_argument("--queries", type=int, default=None, help="timed questions per latency run")
    ap.add_argument(
        "--work", type=Path, default=RESULTS / "work", help="scratch folder for corpora and stores"
    )
    ap.add_argument("--keep", action="store_true", help="keep the stores after measuring them")
    ap.add_argument("--no-server", action="store_true", help="skip Chroma server mode")
    ap.add_argument("--no-baseline", action="store_true", help="skip the LangChain baseline")
    args = ap.parse_args()
    default_sizes = "1000,5000" if args.quick else "1000,10000,100000"
    sizes = [int(x) for x in (args.sizes or default_sizes).split(",") if x.strip()]
    args.ingest_chunks = args.ingest_chunks or (400 if args.quick else 2000)
    args.queries = args.queries or (40 if args.quick else 200)
    args.ingest_queries = min(args.queries, 100)
    args.server_queries = max(20, args.queries // 2)

    started = time.perf_counter()
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "machine": machine(),
        "load_start": load(),
        "quick": args.quick,
        "sizes_requested": sizes,
        "ingest_chunks": args.ingest_chunks,
        "queries": args.queries,
    }
    log(f"ingest stage: {args.ingest_chunks} chunks of real text")
    result["ingest"] = ingest_stage(args, work)
    result["sizes"] = []
    if "error" not in result["ingest"]:
        for n in sizes:
            result["sizes"].append(size_stage(args, work, n))
    result["verdicts"] = verdicts(result)
    result["total_minutes"] = round((time.perf_counter() - started) / 60, 1)
    result["load_end"] = load()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = json.dumps(result, indent=2, default=str)
    path = RESULTS / f"bench-{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(text, encoding="utf-8")
    (RESULTS / "latest.json").write_text(text, encoding="utf-8")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(table(result))
    print(f"\n{result['total_minutes']} min; results in {path}; load {load()}")


if __name__ == "__main__":
    main()
