"""Retrieval metrics with trec_eval semantics, MultiHop-RAG's official rules, and the
mapping from gold evidence (document + character span, or fact text) to retrieved chunks.

Ranks are the order given (never re-sorted by score). An id repeated in a ranking
counts only at its first position. Every metric needs at least one relevant item:
like trec_eval, callers leave out queries without relevance judgements (e.g.
unanswerable ones); passing an empty relevant set raises ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import Any


def _check(relevant: Collection[Hashable], k: int) -> None:
    if not relevant:
        raise ValueError("no relevant items: leave this query out of retrieval metrics")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def _first_hits(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> list[int]:
    """1-based ranks (within k) where a relevant id appears for the first time."""
    seen: set[Hashable] = set()
    ranks = []
    for i, item in enumerate(ranked[:k], start=1):
        if item in relevant and item not in seen:
            ranks.append(i)
        seen.add(item)
    return ranks


def hits_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """1.0 if any relevant item is in the top k ("top-k accuracy", DPR / LlamaIndex hit rate)."""
    _check(relevant, k)
    return 1.0 if _first_hits(ranked, relevant, k) else 0.0


def recall_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """|relevant in top k| / |relevant| (trec_eval ``recall_k``)."""
    _check(relevant, k)
    return len(_first_hits(ranked, relevant, k)) / len(set(relevant))


def precision_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """|relevant in top k| / k, dividing by k even when fewer were retrieved (trec_eval ``P_k``)."""
    _check(relevant, k)
    return len(_first_hits(ranked, relevant, k)) / k


def mrr_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """1 / rank of the first relevant item within k, else 0 (BEIR ``mrr``)."""
    _check(relevant, k)
    ranks = _first_hits(ranked, relevant, k)
    return 1.0 / ranks[0] if ranks else 0.0


def average_precision_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """trec_eval ``map_cut_k``: sum of P@i at relevant ranks i <= k, over ALL relevant items."""
    _check(relevant, k)
    ranks = _first_hits(ranked, relevant, k)
    return sum((j + 1) / r for j, r in enumerate(ranks)) / len(set(relevant))


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Binary-relevance nDCG@k: DCG = sum 1/log2(i+1) over relevant ranks i <= k; the ideal
    DCG puts min(|relevant|, k) relevant items at the top (trec_eval ``ndcg_cut_k``)."""
    _check(relevant, k)
    dcg = sum(1.0 / math.log2(r + 1) for r in _first_hits(ranked, relevant, k))
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(set(relevant)), k) + 1))
    return dcg / ideal


def all_evidence_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """1.0 if every relevant item is in the top k (multi-hop "all evidence found")."""
    _check(relevant, k)
    return 1.0 if len(_first_hits(ranked, relevant, k)) == len(set(relevant)) else 0.0


def dedupe(ranked: Sequence[Hashable]) -> list[Hashable]:
    """Keep the first occurrence of each id: chunk ranking -> document ranking."""
    seen: set[Hashable] = set()
    out = []
    for x in ranked:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


# --- MultiHop-RAG official retrieval rule ------------------------------------------------


def _squash(text: str) -> str:
    # retrieval_evaluate.py removes exactly " " and "\n"; MultiHop-RAG texts hold no other whitespace
    return text.replace(" ", "").replace("\n", "")


def fact_in_chunk(fact: str, chunk_text: str) -> bool:
    """MultiHop-RAG hit rule: the fact is a substring of the chunk text, both without spaces and newlines."""
    return _squash(fact) in _squash(chunk_text)


def multihop_official_retrieval(chunk_texts: Sequence[str], facts: Sequence[str]) -> dict[str, float]:
    """Per-query Hits@10, Hits@4, MAP@10 and MRR@10, verbatim logic of MultiHop-RAG ``retrieval_evaluate.py``.

    MAP@10 there sums, at each hit rank, (gold facts first found at that rank) / rank,
    and divides by min(|facts|, 10).
    """
    if not facts:
        raise ValueError("no gold facts: MultiHop-RAG leaves null queries out of retrieval scoring")
    gold = [_squash(f) for f in facts]
    found: list[str] = []
    first = None
    ap = 0.0
    for rank, text in enumerate(chunk_texts[:10], start=1):
        t = _squash(text)
        if any(g in t for g in gold):
            first = first or rank
            new = 0
            for g in gold:
                if g in t and g not in found:
                    new += 1
                    found.append(g)
            ap += new / rank
    return {
        "hits_at_10": float(first is not None),
        "hits_at_4": float(first is not None and first <= 4),
        "map_at_10": ap / min(len(gold), 10),
        "mrr_at_10": 1.0 / first if first else 0.0,
    }


# --- gold evidence -> retrieved chunks ---------------------------------------------------


def _get(item: Any, name: str, default: Any = None) -> Any:
    """A field of a retrieved chunk given as a dict, a ``Chunk`` or a ``Hit`` (which wraps a chunk)."""
    if isinstance(item, Mapping):
        return item.get(name, default)
    chunk = getattr(item, "chunk", None)  # rag.types.Hit
    return getattr(chunk if chunk is not None else item, name, default)


def _chunk_source(chunk: Any) -> str | None:
    return _get(chunk, "source") or _get(chunk, "doc_id")


def chunk_covers(chunk: Any, evidence: Mapping[str, Any], min_overlap: float = 0.0) -> bool:
    """Whether a retrieved chunk is relevant to one gold evidence item.

    With a span (``start``/``end`` not None): same ``source`` and the character spans
    overlap by more than ``min_overlap`` x the evidence length (default: any overlap;
    eval.md proposes 0.5). Without a span: the MultiHop-RAG fact rule on the chunk text.
    """
    start, end = evidence.get("start"), evidence.get("end")
    if start is None or end is None:
        text = evidence.get("text") or ""
        return bool(text) and fact_in_chunk(text, _get(chunk, "text", "") or "")
    if _chunk_source(chunk) != evidence.get("source"):
        return False
    c_start, c_end = _get(chunk, "start"), _get(chunk, "end")
    if c_start is None or c_end is None:
        return False
    overlap = min(end, c_end) - max(start, c_start)
    return overlap > 0 and overlap > min_overlap * max(end - start, 1)


def evidence_relevance(
    chunks: Sequence[Any], evidence: Sequence[Mapping[str, Any]], min_overlap: float = 0.0
) -> list[set[int]]:
    """For each ranked chunk, the indices of the evidence items it covers."""
    return [{j for j, e in enumerate(evidence) if chunk_covers(c, e, min_overlap)} for c in chunks]


def chunk_ranking(covered: Sequence[set[int]]) -> list[Hashable]:
    """Turn per-chunk coverage into a ranking of ids for the generic metrics.

    A chunk takes the id of the first evidence item it is the first to cover, so an
    evidence item counts once (at its best rank) and a chunk that only repeats already
    covered evidence is non-relevant; the ideal ranking puts one evidence item per chunk.
    """
    seen: set[int] = set()
    out: list[Hashable] = []
    for i, cov in enumerate(covered):
        new = sorted(cov - seen)
        out.append(new[0] if new else ("nonrel", i))
        seen |= cov
    return out


def evidence_scores(
    chunks: Sequence[Any], evidence: Sequence[Mapping[str, Any]], ks: Sequence[int], min_overlap: float = 0.0
) -> dict[str, float]:
    """Chunk- and document-level metrics at each k for one query with gold evidence.

    Chunk level: relevant items are the evidence items; ``recall`` and ``all_evidence``
    count every item a top-k chunk covers (a chunk may cover several). Document level:
    the ranking is the chunks' sources deduplicated; relevant = the evidence sources.
    Keys look like ``recall_at_5_chunk``, ``ndcg_at_10_doc``.
    """
    if not evidence:
        raise ValueError("no gold evidence: leave this query out of retrieval metrics")
    covered = evidence_relevance(chunks, evidence, min_overlap)
    ranking = chunk_ranking(covered)
    targets = list(range(len(evidence)))
    docs = dedupe([_chunk_source(c) for c in chunks])
    gold_docs = {e.get("source") for e in evidence if e.get("source")}
    out: dict[str, float] = {}
    for k in ks:
        union = set().union(*covered[:k]) if covered[:k] else set()
        out[f"hits_at_{k}_chunk"] = hits_at_k(ranking, targets, k)
        out[f"mrr_at_{k}_chunk"] = mrr_at_k(ranking, targets, k)
        out[f"ndcg_at_{k}_chunk"] = ndcg_at_k(ranking, targets, k)
        out[f"recall_at_{k}_chunk"] = len(union) / len(evidence)
        out[f"all_evidence_at_{k}_chunk"] = float(len(union) == len(evidence))
        if gold_docs:
            for name, fn in (
                ("hits", hits_at_k),
                ("recall", recall_at_k),
                ("mrr", mrr_at_k),
                ("ndcg", ndcg_at_k),
                ("all_evidence", all_evidence_at_k),
            ):
                out[f"{name}_at_{k}_doc"] = fn(docs, gold_docs, k)
    return out
