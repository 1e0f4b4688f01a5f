"""The extractive summariser: position-aware centrality over sentence embeddings.

PacSum-like (Zheng & Lapata 2019): a sentence is central when the sentences
*after* it say similar things (news states the point first and elaborates
later), so edges to later sentences add and edges to earlier ones subtract.
A strong position prior and the similarity to the lead sentence are added, then
sentences are picked greedily under a word budget, skipping near-duplicates,
and put back in document order. News boilerplate (bylines, datelines, "Scroll
down for video", agency credits) is cut from candidates first.

Everything works on spans, so the product can cite each picked sentence.
Hyper-parameters were tuned on the even-id half of the CNN/DM element-aware
set only (see ``bench/brief_rouge.py``).

The plain-text brief (``extractive_brief_text``) is then compressed: each picked
sentence loses what carries no news (datelines, parentheticals, a leading "however ,",
trailing or generic attributions such as ", police said"), and a one-sentence brief
is topped up, within the same word budget, with the leading words (a whole clause
when one fits) of the next-best sentence. Compression only deletes, so every output
word comes from the source and in source order. These two steps were chosen on the
even-id (dev) halves of the CNN/DM and XSum element-aware sets only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rag.nlp.text import containment, shingles, split_sentences, word_count


class SentenceEmbedder(Protocol):
    """What the summariser needs from an embedder."""

    def embed(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class ExtractiveParams:
    """Hyper-parameters of the extractive summariser (defaults chosen on the CNN/DM dev half only)."""

    forward_weight: float = 1.0  # weight of similarity to later sentences
    backward_weight: float = -1.0  # weight of similarity to earlier sentences (PacSum's lambda1)
    beta: float = 0.6  # edges below min + beta * (max - min) are dropped
    position_weight: float = 3.0  # weight of the position prior 1 / (1 + i / position_scale)
    position_scale: float = 0.5
    lead_weight: float = 0.25  # weight of the similarity to the first sentence
    centroid_weight: float = 1.0  # weight of the similarity to the document's mean sentence vector
    quote_weight: float = -0.3  # added for sentences that open with a quotation mark
    cross_weight: float = 0.5  # weight of support from other documents (multi-document briefs)
    redundancy: float = 0.85  # cosine above which a sentence repeats one already picked
    fill: bool = False  # after the first sentence that does not fit, keep looking for shorter ones
    min_words: int = 4  # shorter candidates are captions or debris
    compress: bool = True  # cut datelines, parentheticals, discourse markers and attributions from the brief
    fragment_min_words: int = 3  # a one-sentence brief is topped up with the next-best sentence's lead
    # words when at least this many fit in the budget left (0: never)


@dataclass(frozen=True)
class SummaryCandidate:
    """A candidate sentence: ``text == texts[doc][start:end]``, ``position`` its rank in the document."""

    doc: int
    position: int
    start: int
    end: int
    text: str

    @property
    def words(self) -> int:
        return word_count(self.text)


# --- boilerplate -----------------------------------------------------------------

# Leading bits cut from a sentence: "(CNN) --", "cairo ( cnn )", "By . Daily Mail Reporter .", "UPDATED: ...".
_LEADING_JUNK = re.compile(
    r"^(?:"
    r"[^()\n]{0,40}\(\s*(?:cnn|reuters|ap|afp|the hollywood reporter|ew\.com|cnn\.com)\s*\)\s*(?:--|-|:)?\s*"
    r"|(?:by\s*\.\s*)?[a-z .'-]{0,40}\bdaily mail reporter\s*\.?\s*"
    r"|(?:published|updated|last updated(?: at)?)\s*:?\s*\.?\s*[\d:]{3,5}\s*(?:est|gmt|bst|edt)?,?"
    r"\s*\d{1,2}\s+\w+\s+\d{4}\s*\.?\s*\|?\s*\.?\s*"
    r"|by\s*\.\s*[a-z .'-]{0,40}\.\s*(?=\S)"
    r")",
    re.IGNORECASE,
)
# Whole sentences that carry no news.
_JUNK_SENTENCE = re.compile(
    r"scroll down for (?:video|videos)|click here|warning\s*:\s*graphic content|contributed to this report"
    r"|^\W*(?:by|published|updated|last updated)\b[^a-z]*$|reported from|wrote (?:this story )?from"
    r"|^\W*\d{1,2}:\d{2}\s*(?:[ap]\.?m\.?\s*)?(?:est|edt|gmt|bst|cet|et|pt)?\b[\w ,]{0,30}\d{4}\W*$"
    r"|follow (?:us|him|her|me) on twitter|read more\s*:|^\W*(?:video|photos?)\s*:",
    re.IGNORECASE,
)
_INLINE_BREAK = re.compile(r"(?i:scroll down for videos?)\s*\.?")  # glued to the next sentence in raw pages
# Photo captions: a short label and a colon, "Uproar: A petition ..." or (tokenised) "hunt : there is ...".
_CAPTION = re.compile(
    r"^(?:[A-Z][a-z'\u2019]+(?: [a-z'\u2019]+){0,2}:\s+[A-Z'\"\u2018\u201c]"
    r"|[a-z'\u2019]+(?: [a-z'\u2019]+){0,2} : )"
)
_QUESTION = re.compile(r"\?[\"'\u201d\u2019)]*$")  # a brief states; a question from the report does not
_QUOTE_START = re.compile(r"\s*[\"'`\u2018\u201c]")
_TOKENISED_STOP = re.compile(r"(?<=\s[.!?])\s+(?=\S)")  # "word . next" in PTB-tokenised text


_SPEECH = frozenset(
    "said says added adds told explained wrote writes stated continued insisted warned claimed".split()
)


def _is_caption(sentence: str) -> bool:
    """A photo caption ("Uproar: A petition ..."), not a quote introduced by "he said:"."""
    m = _CAPTION.match(sentence)
    return bool(m) and sentence[: sentence.index(":")].split()[-1].lower() not in _SPEECH


def is_tokenised(text: str) -> bool:
    """True for lower-cased, PTB-tokenised text ("he said . the ..."), where case cannot mark sentences."""
    letters = sum(c.isalpha() for c in text)
    upper = sum(c.isupper() for c in text)
    return letters > 0 and upper / letters < 0.01 and " . " in text


def _pieces(text: str, start: int, end: int, tokenised: bool) -> list[tuple[int, int]]:
    """Split one sentence span further at caption seams and, in tokenised text, at " . "."""
    spans = [(start, end)]
    for pattern in (_INLINE_BREAK, _TOKENISED_STOP) if tokenised else (_INLINE_BREAK,):
        nxt: list[tuple[int, int]] = []
        for a, b in spans:
            pos = a
            for m in pattern.finditer(text, a, b):
                nxt.append((pos, m.start()))
                pos = m.end()
            nxt.append((pos, b))
        spans = nxt
    return spans


def _tidy(text: str, a: int, b: int, *, first: bool = False) -> tuple[int, int] | None:
    """Trim leading boilerplate and whitespace from a span; None when nothing newsworthy is left.

    A "Label: text" opening the report is a dateline or a lead caption: the label is cut.
    Later on it is a photo caption and the whole span is dropped.
    """
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    for _ in range(3):  # bylines stack: "By . X . PUBLISHED: ... | . UPDATED: ..."
        m = _LEADING_JUNK.match(text, a, b)
        if not m or m.end() == a:
            break
        a = m.end()
    while a < b and text[a] in " \t\n|.:-":
        a += 1
    if first and _is_caption(text[a:b]):
        a = text.index(":", a) + 1
        while a < b and text[a].isspace():
            a += 1
    if b <= a or _JUNK_SENTENCE.search(text[a:b]) or _is_caption(text[a:b]) or _QUESTION.search(text[a:b]):
        return None
    return a, b


def candidate_sentences(text: str, *, doc: int = 0, min_words: int = 4) -> list[SummaryCandidate]:
    """Sentences of ``text`` worth summarising, boilerplate cut, with spans into ``text``."""
    tokenised = is_tokenised(text)
    out: list[SummaryCandidate] = []
    for sent in split_sentences(text):
        for a, b in _pieces(text, sent.start, sent.end, tokenised):
            span = _tidy(text, a, b, first=not out)
            if span is None or word_count(text[span[0] : span[1]]) < min_words:
                continue
            out.append(SummaryCandidate(doc, len(out), span[0], span[1], text[span[0] : span[1]]))
    return out


# --- scoring ---------------------------------------------------------------------


def directed_centrality(sim: np.ndarray, params: ExtractiveParams) -> np.ndarray:
    """PacSum centrality of each sentence from its similarity to later and earlier ones."""
    n = sim.shape[0]
    if n < 2:
        return np.zeros(n)
    off = sim[~np.eye(n, dtype=bool)]
    lo, hi = float(off.min()), float(off.max())
    edges = np.maximum(sim - (lo + params.beta * (hi - lo)), 0.0)
    np.fill_diagonal(edges, 0.0)
    later = np.triu(edges, 1).sum(axis=1)
    earlier = np.tril(edges, -1).sum(axis=1)
    score = params.forward_weight * later + params.backward_weight * earlier
    span = score.max() - score.min()
    return (score - score.min()) / span if span > 0 else np.zeros(n)


def score_document(
    vectors: np.ndarray, params: ExtractiveParams, quotes: np.ndarray | None = None
) -> np.ndarray:
    """Score one document's sentences: centrality + position prior + similarity to the lead and centroid."""
    n = vectors.shape[0]
    if n == 0:
        return np.zeros(0)
    sim = vectors @ vectors.T
    position = 1.0 / (1.0 + np.arange(n) / params.position_scale)
    mean = vectors.mean(axis=0)
    centroid = vectors @ (mean / (np.linalg.norm(mean) or 1.0))
    score = directed_centrality(sim, params) + params.position_weight * position
    score += params.lead_weight * sim[0] + params.centroid_weight * centroid
    if quotes is not None:
        score += params.quote_weight * quotes
    return score


def score_candidates(
    cands: Sequence[SummaryCandidate], vectors: np.ndarray, params: ExtractiveParams
) -> np.ndarray:
    """Scores for candidates from one or more documents (others' support added across documents)."""
    scores = np.zeros(len(cands))
    docs = sorted({c.doc for c in cands})
    for d in docs:
        idx = np.array([i for i, c in enumerate(cands) if c.doc == d])
        quotes = np.array([float(_QUOTE_START.match(cands[i].text) is not None) for i in idx])
        scores[idx] = score_document(vectors[idx], params, quotes)
        if len(docs) > 1:
            others = np.array([i for i, c in enumerate(cands) if c.doc != d])
            scores[idx] += params.cross_weight * (vectors[idx] @ vectors[others].T).max(axis=1)
    return scores


# --- selection -------------------------------------------------------------------


def _repeats(
    i: int, chosen: list[int], cands: Sequence[SummaryCandidate], vectors: np.ndarray, limit: float
) -> bool:
    """True when candidate ``i`` says what a chosen one already says (embedding or word-shingle overlap)."""
    if not chosen:
        return False
    if float((vectors[chosen] @ vectors[i]).max()) > limit:
        return True
    sh = shingles(cands[i].text)
    return any(containment(sh, shingles(cands[j].text)) > 0.6 for j in chosen)


def select(
    cands: Sequence[SummaryCandidate],
    scores: np.ndarray,
    vectors: np.ndarray,
    max_words: int,
    params: ExtractiveParams,
) -> list[int]:
    """Greedy pick by score within ``max_words``, skipping repeats; indices in document order."""
    chosen: list[int] = []
    used = 0
    for i in np.argsort(-scores, kind="stable"):
        i = int(i)
        w = cands[i].words
        if used + w > max_words:
            if chosen and not params.fill:
                break  # lower-ranked filler that happens to fit does more harm than good
            continue
        if _repeats(i, chosen, cands, vectors, params.redundancy):
            continue
        chosen.append(i)
        used += w
    return sorted(chosen, key=lambda i: (cands[i].doc, cands[i].start))


def rank(
    texts: Sequence[str], embedder: SentenceEmbedder, params: ExtractiveParams | None = None
) -> tuple[list[SummaryCandidate], np.ndarray, np.ndarray]:
    """Candidates of one or more texts with their scores and sentence vectors."""
    params = params or ExtractiveParams()
    cands = [
        c for d, t in enumerate(texts) for c in candidate_sentences(t, doc=d, min_words=params.min_words)
    ]
    if not cands:  # nothing but fragments: better a fragment than an empty brief
        cands = [
            SummaryCandidate(d, i, s.start, s.end, s.text)
            for d, t in enumerate(texts)
            for i, s in enumerate(split_sentences(t))
        ]
    if not cands:
        return [], np.zeros(0), np.zeros((0, 0), dtype=np.float32)
    vectors = np.asarray(embedder.embed([c.text for c in cands]), dtype=np.float32)
    return cands, score_candidates(cands, vectors, params), vectors


def summarize(
    texts: Sequence[str],
    embedder: SentenceEmbedder,
    *,
    max_words: int,
    params: ExtractiveParams | None = None,
) -> list[SummaryCandidate]:
    """The extractive summary of one or more texts: picked sentences in document order."""
    params = params or ExtractiveParams()
    cands, scores, vectors = rank(texts, embedder, params)
    return [cands[i] for i in select(cands, scores, vectors, max_words, params)]


def trim_to_words(cand: SummaryCandidate, limit: int) -> tuple[SummaryCandidate, str]:
    """``cand`` cut to ``limit`` words at the last clause boundary (",;:" or dash) or a word; and how."""
    for m in reversed(list(re.finditer(r"[,;:\u2013\u2014]|\s-\s", cand.text))):
        if 0 < word_count(cand.text[: m.start()]) <= limit:
            text, how = cand.text[: m.start()].rstrip(), "a clause boundary"
            break
    else:
        words = list(re.finditer(r"\S+", cand.text))
        text, how = cand.text[: words[min(limit, len(words)) - 1].end()], "a word boundary (no clause fits)"
    return SummaryCandidate(cand.doc, cand.position, cand.start, cand.start + len(text), text), how


def brief_candidates(
    cands: Sequence[SummaryCandidate],
    scores: np.ndarray,
    vectors: np.ndarray,
    max_words: int,
    params: ExtractiveParams,
) -> tuple[list[SummaryCandidate], str | None]:
    """The brief's sentences, and how the top one was trimmed (None when whole sentences fit).

    Whole sentences are dropped rather than cut; only when the best sentence alone is
    longer than ``max_words`` is it cut, at a clause boundary when one fits.
    """
    if not cands:
        return [], None
    best = cands[int(np.argmax(scores))]
    if best.words > max_words:
        cut, how = trim_to_words(best, max_words)
        return [cut], how
    return [cands[i] for i in select(cands, scores, vectors, max_words, params)], None


# --- compression -----------------------------------------------------------------

_I = re.IGNORECASE
# "media playback is unsupported on your device 5 february 2015 last updated at 07:28 gmt" (BBC video pages).
_MEDIA = re.compile(r"^\W*media playback is (?:not supported|unsupported) on your device\s*", _I)
_DATELINE = re.compile(
    r"^\W*(?:\d{1,2} [a-z]+ \d{4}\s+)?last updated at \d{1,2}:\d{2}\s*(?:gmt|bst|et|edt|est)?\s*", _I
)
_PAREN = re.compile(r"\s+(?:-lrb-|\()[^()]*?(?:-rrb-|\))(?=\s|[.,;:!?]|$)", _I)  # "( cnn )", "-lrb- ap -rrb-"
_DISCOURSE = re.compile(
    r"^(?:however|but|and|meanwhile|also|in addition|instead|so|yet|still|indeed|in a statement"
    r"|speaking [^,]{0,40})\s*,?\s+",
    _I,
)
_SAY = (
    r"(?:said|says|say|told [^,.]{0,30}|added|adds|reported|reports|heard|confirmed|understands|believes"
    r"|announced|revealed|claimed|stated|warned)"
)
# ", police said ." / ", st albans crown court heard ." / ", according to the associated press ." at the end.
_TRAILING_ATTRIBUTION = re.compile(
    r"\s*,\s*(?:[^,.]{0,40}?\s" + _SAY + r"(?: on \w+| in a statement)?|according to [^,]{0,60})"
    r"\s*(?=[.!]?\W*$)",
    _I,
)
# "police said (that) ...", "a spokesman for the bank said ..." (generic sources only: named ones are news).
_GENERIC_ATTRIBUTION = re.compile(
    r"^(?:the |a )?(?:police|officers|officials|detectives|investigators|a spokesman|a spokeswoman"
    r"|a spokesperson|spokesman|spokeswoman|spokesperson|reports|experts|researchers|scientists"
    r"|it is understood|it has been confirmed|the bbc understands|the bbc has learned)\b[^,.]{0,40}?\s"
    r"(?:said|say|says|have said|has said|believe|confirmed|have confirmed|understands|reported)"
    r"\s+(?:that\s+)?",
    _I,
)


def compress_sentence(text: str) -> str:
    """``text`` without datelines, parentheticals, leading discourse markers and attributions.

    Only deletes (cut spans become a space), so the result is the source's words in
    source order; a sentence that would drop below four words is returned whole.
    """
    out = text
    for _ in range(2):  # "however , police said ..." needs two passes
        for pattern in (_MEDIA, _DATELINE, _PAREN, _DISCOURSE, _TRAILING_ATTRIBUTION, _GENERIC_ATTRIBUTION):
            out = pattern.sub(" ", out)
    out = re.sub(r"\s+", " ", out).strip()
    return out if word_count(out) >= 4 else text


def leading_fragment(text: str, limit: int) -> str:
    """The leading words of ``text`` within ``limit`` words: the whole text, else the longest
    clause (cut at ",;:" or a dash) that fits, else the first ``limit`` words."""
    if word_count(text) <= limit:
        return text
    clause = ""
    for m in re.finditer(r"\s?[,;:]\s|\s-\s|\s[\u2013\u2014]\s", text):
        if word_count(text[: m.start()]) > limit:
            break
        clause = text[: m.start()].rstrip()
    if word_count(clause) > 0:
        return clause
    kept: list[str] = []
    n = 0
    for tok in text.split():
        n += bool(re.search(r"\w", tok))
        if n > limit:
            break
        kept.append(tok)
    return " ".join(kept)


def compressed_brief(
    cands: Sequence[SummaryCandidate],
    scores: np.ndarray,
    vectors: np.ndarray,
    max_words: int,
    params: ExtractiveParams,
) -> list[tuple[SummaryCandidate, str]]:
    """The brief's candidates, each with its compressed text, in document order (see the module doc)."""
    picked, how = brief_candidates(cands, scores, vectors, max_words, params)
    if not params.compress:
        return [(c, c.text) for c in picked]
    out = [(c, compress_sentence(c.text)) for c in picked]
    left = max_words - sum(word_count(t) for _, t in out)
    if how is None and len(picked) == 1 and params.fragment_min_words and left >= params.fragment_min_words:
        taken = {(c.doc, c.start) for c in picked}
        chosen = [i for i, c in enumerate(cands) if (c.doc, c.start) in taken]
        for i in np.argsort(-scores, kind="stable"):
            i = int(i)
            if i in chosen or _repeats(i, chosen, cands, vectors, params.redundancy):
                continue
            fragment = leading_fragment(compress_sentence(cands[i].text), left)
            if word_count(fragment) >= params.fragment_min_words:
                out.append((cands[i], fragment))
            break  # only the next-best sentence: lower-ranked ones do more harm than good
    return sorted(out, key=lambda ct: (ct[0].doc, ct[0].start))


def extractive_brief_text(
    text: str, embedder: SentenceEmbedder, *, max_words: int, params: ExtractiveParams | None = None
) -> str:
    """Plain extractive brief of one raw text (sentences joined by newlines), as the product makes it."""
    params = params or ExtractiveParams()
    cands, scores, vectors = rank([text], embedder, params)
    return "\n".join(t for _c, t in compressed_brief(cands, scores, vectors, max_words, params))
