"""Chunking: pack whole sentences into passages sized in the embedder's word pieces.

Sentences come from ``rag.nlp.text.split_sentences``; a sentence longer than the
target is cut into pieces with LangChain's ``RecursiveCharacterTextSplitter``
(length measured with the same ``count_tokens``) and the pieces are packed like
sentences. Every chunk is an exact span: ``chunk.text == doc.text[start:end]``,
and ``count_tokens(chunk.text) <= max_tokens`` is checked on the final text, not
assumed from the sum of its parts.
"""

from __future__ import annotations

from collections.abc import Callable

from rag.errors import ConfigError
from rag.nlp.text import split_sentences
from rag.types import Chunk, Document

PARAGRAPH_BREAK_SHARE = 0.7  # break at a paragraph end if the chunk is already this full
_CACHE_CHARS = 64  # token counts of short strings are cached while splitting (words repeat)

Span = tuple[int, int]


class Chunker:
    """Split documents into sentence-aligned, overlapping chunks under a hard token cap."""

    def __init__(
        self, count_tokens: Callable[[str], int], *, chunk_tokens: int, overlap: int, max_tokens: int
    ) -> None:
        if max_tokens < 1 or chunk_tokens < 1 or overlap < 0:
            raise ConfigError(
                f"chunk sizes must be positive (chunk_tokens={chunk_tokens}, overlap={overlap}, "
                f"max_tokens={max_tokens})."
            )
        self.count_tokens = count_tokens
        self.target = min(chunk_tokens, max_tokens)  # never above what the embedder can read
        self.overlap = min(overlap, self.target // 2)
        self.max_tokens = max_tokens
        self._piece = max(1, self.target // 8)  # oversize sentences become pieces this small
        self._cache: dict[str, int] = {}

    def split(self, doc: Document) -> list[Chunk]:
        """Chunks of ``doc`` in order, ids ``{doc_id}-{index:04d}``."""
        text = doc.text
        units = self._units(text)
        spans = self._pack(text, units)
        spans = [s for span in spans for s in self._capped(text, span)]
        return [
            Chunk(
                chunk_id=f"{doc.doc_id}-{i:04d}",
                doc_id=doc.doc_id,
                source=doc.source,
                index=i,
                start=a,
                end=b,
                text=text[a:b],
                title=doc.title,
                date=doc.date,
                publisher=doc.publisher,
                page=doc.page_at(a),
                page_breaks=[p for p in doc.page_starts if a < p < b],
            )
            for i, (a, b) in enumerate(spans)
        ]

    # --- units: sentences, or pieces of a sentence that is too long ----------------------

    def _units(self, text: str) -> list[tuple[int, int, int]]:
        """``(start, end, tokens)`` of each sentence; oversize sentences replaced by their pieces."""
        units = []
        for s in split_sentences(text):
            n = self.count_tokens(s.text)
            if n <= self.target:
                units.append((s.start, s.end, n))
                continue
            for a, b in self._split_span(text, s.start, s.end, self._piece):
                units.append((a, b, self.count_tokens(text[a:b])))
        return units

    def _split_span(self, text: str, start: int, end: int, size: int) -> list[Span]:
        """Cut ``text[start:end]`` into pieces of at most ``size`` tokens, located exactly."""
        # Imported here: only oversize sentences need LangChain (0.5 s of start-up for every command).
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=size, chunk_overlap=0, length_function=self._cached_count, keep_separator=True
        )
        spans, cursor = [], start
        for piece in splitter.split_text(text[start:end]):
            # Sequential search from the previous piece's end, never from 0: repeated text
            # must map to the right occurrence. Pieces are stripped, contiguous substrings.
            at = text.find(piece, cursor, end)
            if at < 0:  # cannot happen with keep_separator=True; keep the span exact anyway
                return self._hard_split(text, start, end, size)
            spans.append((at, at + len(piece)))
            cursor = at + len(piece)
        return spans

    def _cached_count(self, s: str) -> int:
        if len(s) > _CACHE_CHARS:
            return self.count_tokens(s)
        n = self._cache.get(s)
        if n is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            n = self._cache[s] = self.count_tokens(s)
        return n

    def _hard_split(self, text: str, start: int, end: int, size: int) -> list[Span]:
        """Greedy longest prefixes of at most ``size`` tokens (binary search); always progresses."""
        spans = []
        a = start
        while a < end:
            while a < end and text[a].isspace():
                a += 1
            lo, hi = a + 1, end  # text[a:lo] always fits: one character is at most one piece
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.count_tokens(text[a:mid]) <= size:
                    lo = mid
                else:
                    hi = mid - 1
            b = lo
            while b > a + 1 and text[b - 1].isspace():
                b -= 1
            if b > a:
                spans.append((a, b))
            a = lo
        return spans

    # --- packing ------------------------------------------------------------------------------

    def _pack(self, text: str, units: list[tuple[int, int, int]]) -> list[Span]:
        """Greedy packing of units up to the target, overlapping by trailing whole units."""
        spans: list[Span] = []
        first = 0  # first unit of the next chunk (carried overlap included)
        new = 0  # first unit not yet in any chunk
        while new < len(units):
            while first < new and sum(u[2] for u in units[first : new + 1]) > self.target:
                first += 1  # drop carried units until the next new unit fits
            total, end = 0, first
            while end < len(units) and (end == new or total + units[end][2] <= self.target):
                total += units[end][2]
                end += 1
            end = self._paragraph_end(text, units, first, new, end)
            spans.append((units[first][0], units[end - 1][1]))
            first, new = self._carry(units, first, end), end
        return spans

    def _paragraph_end(
        self, text: str, units: list[tuple[int, int, int]], first: int, new: int, end: int
    ) -> int:
        """Move a chunk's end back to a paragraph break when one is near the end."""
        if end >= len(units):
            return end
        total = sum(u[2] for u in units[first:end])
        for k in range(end - 1, new, -1):  # break between unit k-1 and k; keep >= 1 new unit
            total -= units[k][2]
            if total < PARAGRAPH_BREAK_SHARE * self.target:
                break
            if "\n\n" in text[units[k - 1][1] : units[k][0]]:
                return k
        return end

    def _carry(self, units: list[tuple[int, int, int]], first: int, end: int) -> int:
        """Index of the first trailing unit carried into the next chunk (at most ``overlap`` tokens)."""
        carried, start = 0, end
        while start - 1 > first and carried + units[start - 1][2] <= self.overlap:
            carried += units[start - 1][2]
            start -= 1
        return start

    # --- the hard cap -------------------------------------------------------------------------

    def _capped(self, text: str, span: Span) -> list[Span]:
        """``span`` if its real token count is within ``max_tokens``, else smaller spans that are."""
        a, b = span
        if self.count_tokens(text[a:b]) <= self.max_tokens:
            return [span]
        size = max(1, min(self.target, self.max_tokens) // 2)
        pieces = self._split_span(text, a, b, size)
        if pieces == [span]:
            pieces = self._hard_split(text, a, b, self.max_tokens)
        return [p for piece in pieces for p in self._capped(text, piece)]
