"""Benchmark corpora, built only from the public datasets in ``../shared/datasets`` (no hand-written text).

* ``public_articles()``: real news articles (MultiHop-RAG bodies, CNN/DM and XSum sources, SummEval
  and REALSumm sources) and the SQuAD dev Wikipedia articles, interleaved so that any prefix mixes them.
* ``real_corpus(n_chunks, chunker)``: the first of those articles whose chunks add up to ``n_chunks``.
* ``synthesize(base, vectors, n_chunks)``: a larger store by recombination. Each new chunk joins the
  first half (in whole sentences) of one real chunk and the second half of a real chunk of another
  article; its vector is the length-weighted mix of the two real vectors, renormalised. New documents
  are runs of such chunks under distinct source names. See BENCHMARKS.md for why and how close it is.
* ``questions(n, skip)``: real questions (MultiHop-RAG queries and SQuAD dev questions), interleaved;
  timed sets, warm-up sets and the cold-start question are disjoint slices.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.ingest.loading import content_id, load_text
from rag.nlp.text import normalize, split_sentences
from rag.types import Chunk, Document

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("DOSSIER_DATASETS", REPO.parent / "shared" / "datasets"))


@dataclass(frozen=True)
class Article:
    """One public text with the metadata its dataset gives."""

    source: str  # file name used when it is written out, e.g. "multihop/the-verge-0012.txt"
    title: str | None
    date: str | None
    outlet: str
    text: str

    def file_text(self) -> str:
        """What a report file of this article holds: title, date line, body."""
        head = [self.title] if self.title else []
        if self.date:
            head.append(f"Published: {self.date}")
        return "\n\n".join(head + [self.text.strip()]) + "\n"


@dataclass(frozen=True)
class BaseChunk:
    """A real chunk whose vector was computed by the real embedder (input to ``synthesize``)."""

    text: str
    title: str
    date: str | None
    origin: str  # the source it came from; recombination never joins two halves of one article


def _load(rel: str) -> object:
    path = DATASETS / rel
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the benchmarks need ../shared/datasets (or DOSSIER_DATASETS)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"


def public_articles() -> list[Article]:
    """All usable public articles, interleaved by dataset, deterministic order."""
    groups: list[list[Article]] = []
    mh = [a for a in _load("multihop-rag/corpus.json") if len(a.get("body", "")) > 500]  # type: ignore[union-attr]
    groups.append(
        [
            Article(
                f"multihop/{_slug(a['source'])}-{i:04d}.txt",
                a["title"],
                (a.get("published_at") or "")[:10] or None,
                a["source"],
                a["body"],
            )
            for i, a in enumerate(mh)
        ]
    )
    for name in ("cnndm", "xsum"):
        rows = _load(f"news-summ-element-aware/{name}_element_aware.json")[name]  # type: ignore[index]
        groups.append(
            [Article(f"{name}/{name}-{i:04d}.txt", None, None, name, r["src"]) for i, r in enumerate(rows)]
        )
    seen: set[str] = set()
    summ = []
    for name in ("summeval", "realsumm"):
        for r in _load(f"summeval-cnndm/{name}.json"):  # type: ignore[union-attr]
            key = hashlib.sha1(r["src"][:300].encode()).hexdigest()
            if key not in seen:
                seen.add(key)
                summ.append(Article(f"cnndm-test/{name}-{len(summ):04d}.txt", None, None, "cnndm", r["src"]))
    groups.append(summ)
    squad = _load("squad-dev/dev-v1.1.json")["data"]  # type: ignore[index]
    groups.append(
        [
            Article(
                f"squad/{_slug(a['title'])}.txt",
                a["title"].replace("_", " "),
                None,
                "wikipedia",
                "\n\n".join(p["context"].strip() for p in a["paragraphs"]),
            )
            for a in squad
        ]
    )
    out: list[Article] = []
    for i in range(max(len(g) for g in groups)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


def documents_of(articles: list[Article]) -> list[Document]:
    """The Documents a file ingest would produce (same loading, title and date detection)."""
    return [load_text(a.file_text(), source=a.source) for a in articles]


def real_corpus(n_chunks: int, chunker) -> tuple[list[Article], list[Document], list[list[Chunk]]]:
    """The first public articles whose chunks add up to at least ``n_chunks`` (the last one is cut short)."""
    arts, docs, chunks, total = [], [], [], 0
    for art in public_articles():
        if total >= n_chunks:
            break
        need = n_chunks - total
        doc = load_text(art.file_text(), source=art.source)
        parts = chunker.split(doc)
        if len(parts) > need:  # cut the article at a paragraph so the corpus hits the size
            art = _truncated(art, len(parts), need)
            doc = load_text(art.file_text(), source=art.source)
            parts = chunker.split(doc)
        if not parts:
            continue
        arts.append(art)
        docs.append(doc)
        chunks.append(parts)
        total += len(parts)
    return arts, docs, chunks


def _truncated(art: Article, have: int, need: int) -> Article:
    keep = max(1, int(len(art.text) * need / have))
    cut = art.text.rfind(" ", 0, keep)
    return Article(art.source, art.title, art.date, art.outlet, art.text[: cut if cut > 0 else keep])


def write_files(articles: list[Article], folder: Path) -> list[Path]:
    """Write the articles as .txt report files under ``folder`` (sub-folders by dataset)."""
    paths = []
    for art in articles:
        path = folder / art.source
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(art.file_text(), encoding="utf-8")
        paths.append(path)
    return paths


# --- synthesis ------------------------------------------------------------------------------------


def _halves(text: str) -> tuple[str, str]:
    """First and second half of a chunk, cut between sentences (between words when it has one sentence)."""
    sents = split_sentences(text)
    if len(sents) >= 2:  # the sentence boundary nearest the middle, so each half is about half the length
        k = min(range(1, len(sents)), key=lambda j: abs(sents[j].start - len(text) / 2))
        return text[: sents[k - 1].end].strip(), text[sents[k].start :].strip()
    words = text.split()
    k = max(1, len(words) // 2)
    return " ".join(words[:k]), " ".join(words[k:]) or " ".join(words[:k])


def synthesize(
    base: list[BaseChunk],
    vectors: np.ndarray,
    n_chunks: int,
    *,
    seed: int = 7,
    chunks_per_doc: tuple[int, int] = (4, 16),
    count_tokens=None,
    max_tokens: int = 254,
) -> Iterator[tuple[Document, list[Chunk], np.ndarray]]:
    """Documents of recombined chunks, their chunks (exact spans) and vectors, until ``n_chunks``.

    With ``count_tokens``, a recombined chunk over ``max_tokens`` is redrawn, as the chunker never
    stores one that long.
    """
    rng = np.random.default_rng(seed)
    halves = [_halves(b.text) for b in base]
    # Word pieces never span a space, so the count of "left right" is the sum of the halves' counts.
    sizes = [(count_tokens(h[0]), count_tokens(h[1])) for h in halves] if count_tokens else None
    vecs = np.asarray(vectors, dtype=np.float32)
    made, i = 0, 0
    while made < n_chunks:
        m = int(min(rng.integers(chunks_per_doc[0], chunks_per_doc[1] + 1), n_chunks - made))
        pieces, mixed = [], []
        first = None
        for _ in range(m):
            while True:
                a, b = int(rng.integers(len(base))), int(rng.integers(len(base)))
                left, right = halves[a][0], halves[b][1]
                if base[b].origin != base[a].origin and (
                    sizes is None or sizes[a][0] + sizes[b][1] <= max_tokens
                ):
                    break
            first = a if first is None else first
            pieces.append(f"{left} {right}")
            w = len(left) / max(1, len(left) + len(right))
            v = w * vecs[a] + (1.0 - w) * vecs[b]
            mixed.append(v / (np.linalg.norm(v) or 1.0))
        head = base[first]
        title = head.title or "untitled"
        outlet = head.origin.split("/")[-1].rsplit("-", 1)[0]
        text = "\n\n".join(pieces)
        if i < 20 and normalize(text) != text:  # pieces come from normalised documents; check a sample
            raise AssertionError("recombined text is not in normal form: spans would not match an ingest")
        doc = Document(
            source=f"synth/{outlet}-{i:06d}.txt",
            title=title,
            text=text,
            date=head.date,
            date_note="given",
            format="txt",
            doc_id=content_id(text),
        )
        chunks, at = [], 0
        for j, piece in enumerate(pieces):
            chunks.append(
                Chunk(
                    chunk_id=f"{doc.doc_id}-{j:04d}",
                    doc_id=doc.doc_id,
                    source=doc.source,
                    index=j,
                    start=at,
                    end=at + len(piece),
                    text=piece,
                    title=doc.title,
                    date=doc.date,
                )
            )
            at += len(piece) + 2
        i += 1
        made += len(chunks)
        yield doc, chunks, np.stack(mixed)


# --- questions ------------------------------------------------------------------------------------


def questions(n: int, *, seed: int = 11, skip: int = 0) -> list[str]:
    """``n`` real questions after the first ``skip``: MultiHop-RAG queries and SQuAD questions alternately."""
    rng = np.random.default_rng(seed)
    mh = [q["query"] for q in _load("multihop-rag/MultiHopRAG.json")]  # type: ignore[union-attr]
    sq = [
        qa["question"]
        for a in _load("squad-dev/dev-v1.1.json")["data"]  # type: ignore[index]
        for p in a["paragraphs"]
        for qa in p["qas"]
    ]
    mh = [mh[i] for i in rng.permutation(len(mh))]
    sq = [sq[i] for i in rng.permutation(len(sq))]
    mixed = [q for pair in zip(mh, sq) for q in pair] + sq[len(mh) :]  # 13,126 questions in all
    if skip + n > len(mixed):
        raise ValueError(f"only {len(mixed)} questions: cannot skip {skip} and take {n}")
    return mixed[skip : skip + n]


# Disjoint slices of ``questions()``: timed sets start at 0, the others stay clear of them.
INGEST_QUESTIONS, WARM_QUESTIONS, COLD_QUESTION = 6000, 12000, 13000
