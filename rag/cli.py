"""`rag`: the command line, a thin shell over ``rag.pipeline``.

Every command takes ``--json`` and then prints exactly one JSON document on
stdout; human output, progress and errors go to stderr / stdout as text.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import RagError
from rag.types import Filters


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--store", help="store folder (default: $RAG_STORE or .dossier/store)")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", action="append", help="only this report (repeatable)")
    p.add_argument("--from", dest="date_from", help="published on or after YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", help="published on or before YYYY-MM-DD")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="rag", description="Dossier: cited answers and briefs from your reports."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ingest", help="load, chunk, embed and store files or folders")
    p.add_argument("paths", nargs="+", type=Path)
    _common(p)
    p = sub.add_parser("sources", help="list stored reports")
    _common(p)
    p = sub.add_parser("forget", help="remove a stored report")
    p.add_argument("source")
    _common(p)
    p = sub.add_parser("search", help="retrieved passages with scores and spans")
    p.add_argument("query")
    p.add_argument("--top-k", type=int)
    p.add_argument("--method", choices=["hybrid", "dense", "bm25"], default="hybrid")
    _filters(p)
    _common(p)
    p = sub.add_parser("ask", help="a cited answer, or an honest 'the reports do not say'")
    p.add_argument("question")
    p.add_argument("--top-k", type=int)
    _filters(p)
    _common(p)
    p = sub.add_parser("brief", help="a one-paragraph cited brief (and optionally the structured summary)")
    p.add_argument("--words", type=int)
    p.add_argument("--summary", action="store_true", help="also build the structured summary")
    p.add_argument("--format", choices=["md", "json"], help="export format written to --output (or stdout)")
    p.add_argument("--output", type=Path, help="file to write the export to")
    _filters(p)
    _common(p)
    p = sub.add_parser(
        "reindex", help="re-chunk and re-embed every stored report with the configured embedder"
    )
    _common(p)
    p = sub.add_parser("status", help="mode, embedder, store location and size")
    _common(p)
    p = sub.add_parser("config", help="every setting with its environment variable, default and meaning")
    _common(p)
    p = sub.add_parser("eval", help="run, score and report the evaluation harness")
    _eval_args(p)
    _common(p)
    return parser


def _eval_args(p: argparse.ArgumentParser) -> None:
    try:
        from rag.evaluation.cli import add_arguments
    except ImportError:  # the harness is optional at import time
        return
    add_arguments(p)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(store=Path(args.store) if getattr(args, "store", None) else None)


def _make_filters(args: argparse.Namespace) -> Filters:
    return Filters(tuple(args.source) if args.source else None, args.date_from, args.date_to)


def _progress_bar(label: str) -> Callable[[int, int, str], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, name: str) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name[:40]:<40}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        print(text)


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.pipeline import build_pipeline

    pipe = build_pipeline(_settings(args))
    report = pipe.ingest(args.paths, progress=_progress_bar("ingesting"))
    for item in report.rejected:
        print(f"rejected: {item['path']}: {item['reason']}", file=sys.stderr)
    lines = [f"{k}: {len(getattr(report, k))}" for k in ("added", "updated", "unchanged", "rejected")]
    _emit(args, report.to_dict(), ", ".join(lines) + f" ({report.chunks} chunks written)")
    return 0 if report.ok else 1


def cmd_sources(args: argparse.Namespace) -> int:
    from rag.pipeline import build_pipeline

    infos = build_pipeline(_settings(args)).sources()
    rows = [f"{i.source}\t{i.date or '-'}\t{i.chunks} chunks\t{i.title}" for i in infos]
    _emit(args, {"sources": [i.to_dict() for i in infos]}, "\n".join(rows) or "(no reports stored)")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from rag.pipeline import build_pipeline

    removed = build_pipeline(_settings(args)).forget(args.source)
    msg = (
        f"forgot {args.source}"
        if removed
        else f"no stored report is named {args.source!r} (see `rag sources`)"
    )
    _emit(args, {"source": args.source, "removed": removed}, msg)
    return 0 if removed else 1


def cmd_search(args: argparse.Namespace) -> int:
    from rag.pipeline import build_pipeline

    hits = build_pipeline(_settings(args)).search(
        args.query, top_k=args.top_k, filters=_make_filters(args), method=args.method
    )
    text = "\n\n".join(
        f"[{n}] {h.chunk.source} [{h.chunk.start}:{h.chunk.end}) score={h.score:.4f}\n{h.chunk.text}"
        for n, h in enumerate(hits, 1)
    )
    _emit(args, {"query": args.query, "hits": [h.to_dict() for h in hits]}, text or "(no passages found)")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.pipeline import build_pipeline
    from rag.present import answer_text

    answer = build_pipeline(_settings(args)).ask(args.question, top_k=args.top_k, filters=_make_filters(args))
    _emit(args, answer.to_dict(), answer_text(answer))
    return 0


def cmd_brief(args: argparse.Namespace) -> int:
    from rag.pipeline import build_pipeline
    from rag.present import brief_markdown, summary_to_markdown

    pipe = build_pipeline(_settings(args))
    progress = _progress_bar("summarising")
    brief = pipe.brief(_make_filters(args), words=args.words, progress=progress)
    data: dict[str, Any] = {"brief": brief.to_dict()}
    md = brief_markdown(brief)
    if args.summary or args.format:
        summary = pipe.summary(_make_filters(args), progress=progress)
        data["summary"] = summary
        md += "\n\n" + summary_to_markdown(summary)
    if args.format:
        out = json.dumps(data, ensure_ascii=False, indent=2) if args.format == "json" else md
        if args.output:
            args.output.write_text(out, encoding="utf-8")
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            print(out)
        return 0
    _emit(args, data, md)
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from rag.pipeline import build_pipeline

    pipe = build_pipeline(_settings(args), reindex=True)
    report = pipe.reindex(progress=_progress_bar("reindexing"))
    _emit(
        args,
        report.to_dict(),
        f"re-embedded {len(report.updated) + len(report.added)} reports "
        f"({report.chunks} chunks) with {pipe.embedder.name}",
    )
    return 0 if report.ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from rag.pipeline import build_pipeline

    status = build_pipeline(_settings(args)).status()
    _emit(args, status, "\n".join(f"{k}: {v}" for k, v in status.items()))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    rows = [{"field": f, "env": e, "default": str(d), "doc": doc} for f, e, d, doc in Settings.describe()]
    _emit(args, {"settings": rows}, "\n".join(f"{r['env']:<26} {r['default']:<28} {r['doc']}" for r in rows))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluation.cli import run as run_eval

    return run_eval(args, _settings(args))


COMMANDS = {
    "ingest": cmd_ingest,
    "sources": cmd_sources,
    "forget": cmd_forget,
    "search": cmd_search,
    "ask": cmd_ask,
    "brief": cmd_brief,
    "reindex": cmd_reindex,
    "status": cmd_status,
    "config": cmd_config,
    "eval": cmd_eval,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rag` console script."""
    args = build_parser().parse_args(argv)
    # pypdf prints repair warnings for damaged files; ingest reports per-file problems itself.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        return COMMANDS[args.command](args)
    except RagError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
