"""The `run` stage: build an index with the real pipeline, ask, and record everything.

A run file is JSON Lines: one ``{"type": "meta"}`` line (suite, settings with
secrets masked, fingerprints, commit), then one line per test case with the
retrieved chunks (ours and the BM25-only baseline), the answer with its
citations, briefs, and timings. Scoring reads only this file.
"""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rag.config import Settings, project_folder
from rag.errors import RagError
from rag.evaluation import datasets as ds
from rag.types import Filters, Progress

REPO = Path(__file__).resolve().parents[2]
RETRIEVE_K = 10


@dataclass
class Part:
    """One dataset inside a suite: a corpus to index and cases to run."""

    name: str
    kind: str  # "qa", "brief" (pipeline briefs over stored reports) or "textbrief" (raw-text briefs)
    cases: list[ds.TestCase]
    corpus: list[ds.CorpusRecord] = field(default_factory=list)
    folder: Path | None = None  # index these files instead of ``corpus``


def shared_dir() -> Path:
    """The team's shared datasets folder beside the checkout (may be absent)."""
    return REPO.parent / "shared"


def _eval_dir() -> Path:
    """The bundled evaluation files (gold set, thresholds, baselines): the project's top-level ``eval/``."""
    return project_folder("eval")


def gold_parts() -> list[Part]:
    """The bundled gold set over the sample reports in data/ (works without ../shared)."""
    folder = _eval_dir()
    data = REPO / "data"
    qa = ds.load_cases(folder / "gold.jsonl")
    briefs = ds.load_cases(folder / "gold_briefs.jsonl")
    return [Part("gold", "qa", qa, folder=data), Part("gold-brief", "brief", briefs, folder=data)]


def _sample(cases: list[ds.TestCase], limit: int | None, seed: int = 0) -> list[ds.TestCase]:
    if limit is None or limit >= len(cases):
        return cases
    picked = set(random.Random(seed).sample(range(len(cases)), limit))
    return [c for i, c in enumerate(cases) if i in picked]


def multihop_part(
    split: Literal["dev", "test", "all"], limit: int | None, distractors: int | None = None
) -> Part:
    """MultiHop-RAG cases of a split; with ``distractors`` the corpus is cut to the gold
    articles of the sampled cases plus that many other articles (for a fast run)."""
    corpus, cases = ds.multihop_rag(shared_dir(), split=split)
    cases = _sample(cases, limit)
    if distractors is not None:
        gold = {e["source"] for c in cases for e in c.evidence}
        others = [r for r in corpus if r.source not in gold]
        keep = gold | {r.source for r in random.Random(1).sample(others, min(distractors, len(others)))}
        corpus = [r for r in corpus if r.source in keep]
    for r in corpus:  # the outlet is part of a news report's identity; queries name it
        outlet = r.meta.get("source") or r.meta.get("outlet")
        if outlet and outlet not in r.title:
            r.title = f"{r.title} ({outlet})"
    return Part(f"multihop-{split}", "qa", cases, corpus)


def squad_part(
    version: Literal["1.1", "2.0"], limit: int | None, scope: Literal["articles", "paragraphs", "all"]
) -> Part:
    corpus, cases = ds.squad(shared_dir(), version=version, limit=limit, seed=0, corpus_scope=scope)
    return Part(f"squad-{version}", "qa", cases, corpus)


def brief_part(name: Literal["cnndm", "xsum"], limit: int | None) -> Part:
    return Part(name, "textbrief", _sample(ds.element_aware(shared_dir(), name), limit))


SUITES: dict[str, Callable[[int | None], list[Part]]] = {
    "gold": lambda limit: gold_parts(),
    "fast": lambda limit: (
        gold_parts()
        + [
            multihop_part("test", limit or 40, distractors=60),
            brief_part("cnndm", 40),
            brief_part("xsum", 40),
        ]
    ),
    "multihop": lambda limit: [multihop_part("test", limit)],
    "multihop-dev": lambda limit: [multihop_part("dev", limit)],
    "squad": lambda limit: [squad_part("1.1", limit or 1000, "all")],
    "squad2": lambda limit: [squad_part("2.0", limit or 1000, "articles")],
    "briefs": lambda limit: [brief_part("cnndm", limit), brief_part("xsum", limit)],
    "full": lambda limit: (
        gold_parts()
        + [
            multihop_part("test", limit),
            squad_part("1.1", 1000, "all"),
            squad_part("2.0", 1000, "articles"),
            brief_part("cnndm", None),
            brief_part("xsum", None),
        ]
    ),
}


def parts_for(suite: str, limit: int | None = None) -> list[Part]:
    """The parts of a named suite; a clear error when its data is not beside the checkout."""
    if suite not in SUITES:
        raise RagError(f"Unknown evaluation suite {suite!r}.", hint=f"Choose one of: {', '.join(SUITES)}.")
    try:
        return SUITES[suite](limit)
    except ds.DatasetError as exc:
        raise RagError(
            f"Suite {suite!r} needs the shared datasets: {exc}",
            hint="Run `rag eval --suite gold`, which needs only the bundled files.",
        ) from exc


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _meta(suite: str, settings: Settings, parts: list[Part]) -> dict[str, Any]:
    from rag.prompts import prompt_fingerprint

    return {
        "type": "meta",
        "suite": suite,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "commit": _git_commit(),
        "settings": settings.public_dict(),
        "fingerprint": settings.fingerprint({"prompts": prompt_fingerprint()}),
        "parts": {p.name: len(p.cases) for p in parts},
    }


def run(
    suite: str,
    settings: Settings,
    out_dir: Path,
    *,
    limit: int | None = None,
    progress: Progress | None = None,
) -> Path:
    """Run every part of ``suite`` and write ``out_dir/run.jsonl``; returns its path."""
    from rag.pipeline import build_pipeline

    parts = parts_for(suite, limit)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "run.jsonl"
    embedder = None
    with path.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(_meta(suite, settings, parts)) + "\n")
        for part in parts:
            store = Path(settings.store).parent / f"{Path(settings.store).name}-eval-{part.name}"
            pipe = build_pipeline(settings.replace(store=store, collection="eval"), embedder=embedder)
            embedder = pipe.embedder
            for record in _run_part(part, pipe, progress):
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                fh.flush()
    return path


def _index(part: Part, pipe: Any, progress: Progress | None) -> float:
    from rag.ingest.loading import load_text

    t0 = time.perf_counter()
    tick = (lambda done, total, _name: progress(done, total, f"{part.name}: indexing")) if progress else None
    if part.folder is not None:
        report = pipe.ingest([part.folder], progress=tick)
    else:
        docs = [load_text(r.text, source=r.source, title=r.title, date=r.date) for r in part.corpus]
        report = pipe.ingest_documents(docs, progress=tick)
    if report.rejected:
        raise RagError(
            f"Evaluation corpus {part.name}: {len(report.rejected)} documents rejected, "
            f"e.g. {report.rejected[0]}"
        )
    return time.perf_counter() - t0


def _run_part(part: Part, pipe: Any, progress: Progress | None) -> Iterator[dict[str, Any]]:
    index_s = _index(part, pipe, progress) if part.kind != "textbrief" else 0.0
    yield {
        "type": "index",
        "part": part.name,
        "seconds": round(index_s, 3),
        "chunks": pipe.store.count_chunks(),
    }
    runner = {"qa": _run_qa, "brief": _run_brief, "textbrief": _run_textbrief}[part.kind]
    for i, case in enumerate(part.cases, 1):
        record = runner(case, pipe)
        record.update(type=part.kind, part=part.name, case=dataclasses.asdict(case))
        if part.kind == "textbrief":
            record["case"].pop("document", None)  # the scorer reads the dataset again
        yield record
        if progress:
            progress(i, len(part.cases), part.name)


def _hit_row(hit: Any) -> dict[str, Any]:
    c = hit.chunk
    return {
        "chunk_id": c.chunk_id,
        "source": c.source,
        "start": c.start,
        "end": c.end,
        "text": c.text,
        "score": hit.score,
    }


def _run_qa(case: ds.TestCase, pipe: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    hits = pipe.search(case.question, top_k=RETRIEVE_K)
    t1 = time.perf_counter()
    bm25 = pipe.search(case.question, top_k=RETRIEVE_K, method="bm25")
    t2 = time.perf_counter()
    try:
        answer = pipe.ask(case.question).to_dict()
    except RagError as exc:
        answer = {
            "answer": "",
            "abstained": False,
            "error": str(exc),
            "citations": [],
            "sentences": [],
            "passages": [],
            "mode": pipe.mode,
            "usage": {},
        }
    t3 = time.perf_counter()
    for p in answer.get("passages", []):
        p.pop("title", None)
    return {
        "retrieved": [_hit_row(h) for h in hits],
        "retrieved_bm25": [_hit_row(h) for h in bm25],
        "answer": answer,
        "latency": {"search": t1 - t0, "bm25": t2 - t1, "ask": t3 - t2},
    }


def _run_brief(case: ds.TestCase, pipe: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    brief = pipe.brief(Filters(sources=tuple(case.sources) or None), words=case.max_words)
    t1 = time.perf_counter()
    summary = pipe.summary(Filters(sources=tuple(case.sources) or None))
    t2 = time.perf_counter()
    docs = {d.source: d.text for d in pipe.select_documents(Filters(sources=tuple(case.sources) or None))}
    return {
        "brief": brief.to_dict(),
        "summary": summary,
        "documents": docs,
        "latency": {"brief": t1 - t0, "summary": t2 - t1},
    }


def _run_textbrief(case: ds.TestCase, pipe: Any) -> dict[str, Any]:
    from rag.evaluation.metrics import lead_k
    from rag.summarize.summarizer import extractive_brief_text

    lead_n = 1 if case.tags.get("type") == "xsum" else 3
    lead = lead_k(case.document, lead_n)
    budget = len(lead.split())  # the same length as the Lead baseline, article by article
    t0 = time.perf_counter()
    ours = extractive_brief_text(case.document, pipe.embedder, max_words=budget)
    return {
        "brief_text": ours,
        "lead": lead,
        "lead_n": lead_n,
        "budget": budget,
        "latency": {"brief": time.perf_counter() - t0},
    }
