"""Citation recall and precision exactly as ALCE (Gao et al. 2023, ``eval.py``) computes
them, with a pluggable support judge in place of ALCE's T5-11B NLI model.

The offline judge ``support`` is lexical (see its docstring and eval/README.md). Any
callable ``judge(sentence, passages) -> bool`` can replace it (a local NLI model or an
LLM later); scores must then be reported under the judge's name, as they differ.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rag.nlp.text import STOPWORDS, WORD_RE, content_words, fold, words

Judge = Callable[[str, Sequence[str]], bool]

MIN_CONTENT_RECALL = 0.6
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")


# --- the offline support judge ---------------------------------------------------------


def _numbers(text: str) -> set[str]:
    """Numbers with thousands separators dropped: "2,000" and "2000" are the same number."""
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def key_tokens(sentence: str) -> list[str]:
    """The tokens a sentence must not get wrong: numbers (dates included) and capitalised words.

    Capitalised words are names, months, weekdays, organisations, and also the first
    word of the sentence; a capitalised stop word ("The", "He") is skipped. Matching is
    case-folded, so a capitalised first word only has to occur somewhere in the passages.
    """
    keys = sorted(_numbers(sentence), key=sentence.find)
    for token in WORD_RE.findall(sentence):
        if token[0].isupper() and token.lower() not in STOPWORDS and not token[0].isdigit():
            keys.append(token)
    return list(dict.fromkeys(keys))


def missing_key_tokens(sentence: str, passages: Sequence[str]) -> list[str]:
    """Key tokens of ``sentence`` (see ``key_tokens``) that no passage contains (folded match)."""
    joined = fold("\n".join(passages))
    nums = _numbers(joined)
    vocab = set(words(joined))
    missing = []
    for key in key_tokens(sentence):
        if key[0].isdigit():
            if key not in nums:
                missing.append(key)
        elif fold(key).replace("\u2019", "'") not in vocab:
            missing.append(key)
    return missing


def content_recall(sentence: str, passages: Sequence[str]) -> float:
    """Share of the sentence's content words (stop words removed, folded) found in the passages."""
    toks = content_words(fold(sentence))
    if not toks:
        return 1.0
    vocab = set(words(fold("\n".join(passages))))
    return sum(t in vocab for t in toks) / len(toks)


def support(sentence: str, passages: Sequence[str]) -> bool:
    """Offline stand-in for ALCE's NLI entailment: do ``passages`` support ``sentence``?

    True iff (1) at least 60% of the sentence's content words (``rag.nlp.text.content_words``,
    case/quote folded) occur in the passages, and (2) every key token (every number,
    date part and capitalised name token, see ``key_tokens``) occurs in the passages,
    numbers compared as numbers ("2,000" = "2000"), words case-folded. No passages: False.
    It cannot see negation or word order, so it over-credits paraphrases that flip a fact
    with the same words; use it as a regression signal, not as proof of entailment.
    """
    if not passages:
        return False
    return content_recall(sentence, passages) >= MIN_CONTENT_RECALL and not missing_key_tokens(
        sentence, passages
    )


def grounded_entities_share(sentences_with_passages: Iterable[tuple[str, Sequence[str]]]) -> float:
    """Share of answer sentences whose numbers, dates and names all occur in their cited passages.

    A sentence without cited passages counts as grounded only if it has no key token.
    Returns 0.0 for no sentences.
    """
    verdicts = [not missing_key_tokens(s, p) if p else not key_tokens(s) for s, p in sentences_with_passages]
    return sum(verdicts) / len(verdicts) if verdicts else 0.0


# --- ALCE -------------------------------------------------------------------------------


def parse_cited_ids(sentence: str) -> list[int]:
    """0-based passage indices cited in a sentence, ALCE style: every ``[n`` marker (n is 1-based)."""
    return [int(m[1:]) - 1 for m in re.findall(r"\[\d+", sentence)]


def remove_citations(sentence: str) -> str:
    """ALCE ``remove_citations``: the sentence with its ``[n]`` markers removed."""
    return re.sub(r"\[\d+", "", re.sub(r" \[\d+", "", sentence)).replace(" |", "").replace("]", "").strip()


@dataclass
class CitationScores:
    """ALCE citation recall and precision of one output (fractions), with per-sentence verdicts."""

    recall: float
    precision: float
    n_sentences: int
    n_citations: int
    sentence_supported: list[bool] = field(default_factory=list)


def _precision_points(sentence: str, refs: list[int], passages: Sequence[str], judge: Judge) -> int:
    """Citations of a jointly supported multi-citation sentence that are not "irrelevant".

    A citation is irrelevant iff it alone does not support the sentence AND the other
    citations together still do.
    """
    points = 0
    for ref in refs:
        if judge(sentence, [passages[ref]]):
            points += 1
            continue
        rest = list(refs)
        rest.remove(ref)  # as ALCE: drops the first occurrence of this id
        if not judge(sentence, [passages[r] for r in rest]):
            points += 1
    return points


def alce_citation_scores(
    sentences: Sequence[tuple[str, Sequence[int]]],
    passages: Sequence[str],
    judge: Judge = support,
    at_most_citations: int | None = 3,
) -> CitationScores:
    """ALCE citation recall/precision for one output.

    ``sentences``: (sentence text without markers, 0-based cited passage indices).
    Recall per sentence: 0 without citations or with an out-of-range id, else
    judge(sentence, cited passages). Precision: each citation (first ``at_most_citations``
    per sentence) scores 1 iff its sentence is supported and it is not irrelevant; with
    a single citation it scores the sentence's recall. Output recall = mean over
    sentences; precision = points / citations (0 without citations).
    """
    entail = prec_points = total_citations = 0
    verdicts: list[bool] = []
    for text, cited in sentences:
        refs = list(cited)
        if not refs or any(r < 0 or r >= len(passages) for r in refs):
            joint = False
        else:
            if at_most_citations is not None:
                refs = refs[:at_most_citations]
            total_citations += len(refs)
            joint = bool(judge(text, [passages[r] for r in refs]))
        entail += joint
        verdicts.append(joint)
        if joint and len(refs) > 1:
            prec_points += _precision_points(text, refs, passages, judge)
        else:
            prec_points += joint
    n = len(sentences)
    return CitationScores(
        recall=entail / n if n else 0.0,
        precision=prec_points / total_citations if total_citations else 0.0,
        n_sentences=n,
        n_citations=total_citations,
        sentence_supported=verdicts,
    )


def sentences_with_markers(sentences: Iterable[str]) -> list[tuple[str, list[int]]]:
    """Turn sentences carrying ``[n]`` markers into ALCE input: (clean text, 0-based ids)."""
    return [(remove_citations(s), parse_cited_ids(s)) for s in sentences]
