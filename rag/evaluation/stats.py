"""Confidence intervals and paired comparisons over per-question values, and per-group breakdowns.

Bootstrap: percentile method, resampling questions with replacement, a fixed seed
(``numpy.random.default_rng(seed)``) so the same values always give the same interval.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0


@dataclass(frozen=True)
class MeanCI:
    """A mean with its bootstrap confidence interval; all None when there are no values."""

    value: float | None
    lo: float | None
    hi: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        """The scored-result form: {"value", "ci": [lo, hi] | None, "n"}."""
        ci = None if self.lo is None else [self.lo, self.hi]
        return {"value": self.value, "ci": ci, "n": self.n}


@dataclass(frozen=True)
class PairedDiff:
    """Mean of (current - baseline) over shared questions, its bootstrap CI and a two-sided p."""

    delta: float | None
    lo: float | None
    hi: float | None
    p_value: float | None
    n: int


def _boot_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_resamples, values.size))
    return values[idx].mean(axis=1)


def bootstrap_ci(
    values: Sequence[float],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> MeanCI:
    """Mean and percentile-bootstrap CI of ``values`` (booleans count as 0/1)."""
    arr = np.asarray([float(v) for v in values], dtype=float)
    if arr.size == 0:
        return MeanCI(None, None, None, 0)
    means = _boot_means(arr, n_resamples, seed)
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return MeanCI(float(arr.mean()), float(lo), float(hi), int(arr.size))


def summarize(values: Sequence[float], **kwargs: Any) -> dict[str, Any]:
    """``{"value", "ci", "n"}`` for the scored result (see ``bootstrap_ci`` for the options)."""
    return bootstrap_ci(values, **kwargs).to_dict()


def _align(
    current: Mapping[Hashable, float] | Sequence[float], baseline: Mapping[Hashable, float] | Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Pair values by question id (mappings: shared ids only) or by position (sequences)."""
    if isinstance(current, Mapping) and isinstance(baseline, Mapping):
        ids = [q for q in current if q in baseline]
        return (np.asarray([float(current[q]) for q in ids]), np.asarray([float(baseline[q]) for q in ids]))
    if isinstance(current, Mapping) or isinstance(baseline, Mapping):
        raise TypeError("pass both runs as {question_id: value} or both as equal-length sequences")
    if len(current) != len(baseline):
        raise ValueError(f"paired values differ in length: {len(current)} vs {len(baseline)}")
    return np.asarray(current, dtype=float), np.asarray(baseline, dtype=float)


def paired_bootstrap(
    current: Mapping[Hashable, float] | Sequence[float],
    baseline: Mapping[Hashable, float] | Sequence[float],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> PairedDiff:
    """Paired bootstrap of the mean difference current - baseline on the same questions.

    Questions are resampled jointly, so per-question difficulty cancels out. p is the
    two-sided bootstrap p-value: twice the smaller share of resampled means on either
    side of zero (capped at 1). A regression is "significant" when ``hi < 0``.
    """
    cur, base = _align(current, baseline)
    if cur.size == 0:
        return PairedDiff(None, None, None, None, 0)
    diffs = cur - base
    means = _boot_means(diffs, n_resamples, seed)
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    p = min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
    return PairedDiff(float(diffs.mean()), float(lo), float(hi), p, int(diffs.size))


def group_values(
    rows: Iterable[Mapping[str, Any]],
    value: str | Callable[[Mapping[str, Any]], Any],
    group: str | Callable[[Mapping[str, Any]], Hashable],
) -> dict[Hashable, list[float]]:
    """Values per group, in first-seen order; rows whose value is None are skipped.

    ``value`` and ``group`` are a key of the row or a function of it, e.g.
    ``group=lambda r: r["tags"]["type"]``.
    """
    get_v = value if callable(value) else (lambda r: r.get(value))
    get_g = group if callable(group) else (lambda r: r.get(group))
    out: dict[Hashable, list[float]] = defaultdict(list)
    for row in rows:
        v = get_v(row)
        if v is not None:
            out[get_g(row)].append(float(v))
    return dict(out)


def by_group(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    group: str | Callable[[Mapping[str, Any]], Hashable],
    *,
    min_n: int = 1,
    **kwargs: Any,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per-group ``{"value", "ci", "n"}`` for each metric: the scored result's ``by_type``.

    ``rows`` are per-question dicts whose ``values`` dict holds the metric values (or the
    metric is a top-level key). Groups with fewer than ``min_n`` values are left out.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for metric in metrics:

        def get(row: Mapping[str, Any], m: str = metric) -> Any:
            vals = row.get("values")
            return vals.get(m) if isinstance(vals, Mapping) and m in vals else row.get(m)

        for g, vals in group_values(rows, get, group).items():
            if len(vals) >= min_n:
                out.setdefault(str(g), {})[metric] = summarize(vals, **kwargs)
    return out
