"""BM25 over chunk text plus the report's title, source name and date.

Built once per store generation and kept in memory, so a query costs one sparse
score pass (well under a millisecond per 10k chunks), never a rebuild; ``save`` and
``load`` let a new process skip the build (see ``rag.retrieve.retriever``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from rag.nlp.text import _FOLD_MAP, STOPWORDS, WORD_RE, fold, stem, words
from rag.types import Chunk

# ``fold`` maps the characters of ``_FOLD_MAP`` (quotes, dashes, spaces, ellipsis) and lower-cases the
# rest one by one. ``str.lower`` on a whole text agrees with that except for U+0130 (its lower case is
# two characters) and U+03A3 (final-sigma rule); texts holding either take the per-character path.
_FOLD_SPECIAL = {c: fold(c) for c in _FOLD_MAP}
_SPECIAL_RE = re.compile("[" + re.escape("".join(_FOLD_SPECIAL)) + "]")
_STEMS: dict[str, str] = {}


def folded_words(text: str) -> list[str]:
    """``words(fold(text))``, computed with C-level string operations where that is exact."""
    if "\u0130" in text or "\u03a3" in text:
        return words(fold(text))
    low = _SPECIAL_RE.sub(lambda m: _FOLD_SPECIAL[m.group()], text.lower())
    return WORD_RE.findall(low)  # already lower case; U+2019 was folded to "'"


def _stem(w: str) -> str:
    s = _STEMS.get(w)
    if s is None:
        if len(_STEMS) > 1_000_000:  # a bound, not a working set: vocabularies are far smaller
            _STEMS.clear()
        s = _STEMS[w] = stem(w)
    return s


def lexical_tokens(text: str) -> list[str]:
    """Folded, stop-worded, lightly stemmed tokens used on both sides of BM25.

    Same result as ``[stem(w) for w in words(fold(text)) if w not in STOPWORDS]``, several times
    faster (tokenising is most of the cost of building the index): folding runs as C string
    operations and stems are memoised.
    """
    return [_stem(w) for w in folded_words(text) if w not in STOPWORDS]


def indexed_text(chunk: Chunk) -> str:
    """What BM25 sees of a chunk: metadata helps on news (outlet, title, date in queries)."""
    return f"{chunk.title}\n{chunk.source}\n{chunk.date or ''}\n{chunk.text}"


class LexicalIndex:
    """An immutable BM25 index over a fixed list of chunks."""

    def __init__(self, chunks: list[Chunk]) -> None:
        import bm25s  # imported here: only the lexical stage needs it

        self.ids = [c.chunk_id for c in chunks]
        self.position = {cid: i for i, cid in enumerate(self.ids)}
        self._bm25 = bm25s.BM25(method="lucene")
        if chunks:
            corpus = [lexical_tokens(indexed_text(c)) or ["\u2205"] for c in chunks]
            self._bm25.index(corpus, show_progress=False)

    def save(self, folder: Path) -> None:
        """Write the index (bm25s arrays, vocabulary, chunk ids) into ``folder``."""
        self._bm25.save(str(folder), show_progress=False)
        (folder / "ids.json").write_text(json.dumps(self.ids), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        """An index written by ``save`` (a few hundred milliseconds, against a full rebuild)."""
        import bm25s

        index = cls.__new__(cls)
        index.ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
        index.position = {cid: i for i, cid in enumerate(index.ids)}
        index._bm25 = bm25s.BM25.load(str(folder), show_progress=False)
        return index

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, n: int, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Top ``n`` chunk ids by BM25 score (only positive scores; ``mask`` keeps a subset)."""
        if not self.ids:
            return []
        tokens = [t for t in lexical_tokens(query) if t]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]
