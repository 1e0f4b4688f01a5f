"""The CI gate: check a scored run against floors, ceilings, invariants and a baseline.

Thresholds are a TOML file (read with ``tomllib``)::

    [invariants]              # must equal exactly (true == 1.0)
    citation_parse_rate = 1.0

    [floors]                  # value must be >= floor; a key ending in "_max" is a ceiling
    hits_at_5_doc = 0.85
    unsupported_number_rate_max = 0.0

    [ceilings]                # value must be <= ceiling
    latency_p95 = 5.0

    [regression]              # against a baseline scored result
    max_drop = 0.02           # fail if the drop exceeds this AND is significant (see report.compare)
    metrics = ["f1", "recall_at_10_chunk"]      # optional; default: every metric in both runs
    lower_is_better = ["unsupported_number_rate"]
    [regression.max_drop_per_metric]
    f1 = 0.03

``check`` returns failure messages; an empty list means the gate passes. The caller
chooses the exit code. A metric with a threshold that the run did not score fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, packaged as tomli
    import tomli as tomllib  # type: ignore[no-redef]

from rag.errors import ConfigError
from rag.evaluation.report import compare

_SECTIONS = {"invariants", "floors", "ceilings", "regression"}


def load_thresholds(path: str | Path) -> dict[str, Any]:
    """Read a thresholds TOML file; unknown top-level tables raise ConfigError."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read thresholds file {path}: {exc}") from exc
    unknown = set(data) - _SECTIONS
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {', '.join(sorted(unknown))}",
            hint=f"Use {', '.join(sorted(_SECTIONS))}.",
        )
    return data


def _value(scored: Mapping[str, Any], name: str) -> float | None:
    entry = scored.get("metrics", {}).get(name)
    if entry is None:
        return None
    value = entry.get("value") if isinstance(entry, Mapping) else entry
    return None if value is None else float(value)


def _bounds(thresholds: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    floors, ceilings = {}, dict(thresholds.get("ceilings", {}))
    for name, bound in thresholds.get("floors", {}).items():
        if name.endswith("_max"):
            ceilings[name[: -len("_max")]] = bound
        else:
            floors[name] = bound
    return floors, ceilings


def _check_bounds(scored: Mapping[str, Any], thresholds: Mapping[str, Any]) -> list[str]:
    failures = []
    floors, ceilings = _bounds(thresholds)
    for name, expected in thresholds.get("invariants", {}).items():
        value = _value(scored, name)
        if value is None:
            failures.append(f"invariant {name}: not scored")
        elif abs(value - float(expected)) > 1e-9:
            failures.append(f"invariant {name}: {value:.4f} != {float(expected):.4f}")
    for name, floor in floors.items():
        value = _value(scored, name)
        if value is None:
            failures.append(f"floor {name}: not scored")
        elif value < floor:
            failures.append(f"floor {name}: {value:.4f} < {floor:.4f}")
    for name, ceiling in ceilings.items():
        value = _value(scored, name)
        if value is None:
            failures.append(f"ceiling {name}: not scored")
        elif value > ceiling:
            failures.append(f"ceiling {name}: {value:.4f} > {ceiling:.4f}")
    return failures


def _check_regressions(
    scored: Mapping[str, Any], baseline: Mapping[str, Any], rules: Mapping[str, Any]
) -> list[str]:
    lower = set(rules.get("lower_is_better", []))
    per_metric = rules.get("max_drop_per_metric", {})
    wanted = rules.get("metrics")
    failures = []
    for row in compare(scored, baseline, lower_is_better=lower):
        name = row["metric"]
        if wanted is not None and name not in wanted:
            continue
        if row["method"] == "missing":
            if wanted is not None:
                failures.append(f"regression {name}: missing from the current run or the baseline")
            continue
        drop = -row["delta"] if name not in lower else row["delta"]
        allowed = float(per_metric.get(name, rules.get("max_drop", 0.0)))
        if row["regressed"] and drop > allowed:
            ci = f", 95% CI of Δ [{row['ci'][0]:+.4f}, {row['ci'][1]:+.4f}]" if row["ci"] else ""
            failures.append(
                f"regression {name}: {row['baseline']:.4f} -> {row['current']:.4f} "
                f"(Δ {row['delta']:+.4f}, allowed drop {allowed:.4f}, {row['method']}{ci})"
            )
    return failures


def check(
    scored: Mapping[str, Any], thresholds: Mapping[str, Any], baseline: Mapping[str, Any] | None = None
) -> list[str]:
    """Failure messages of the gate (empty = pass).

    Invariants, floors and ceilings are checked on ``scored["metrics"]``. With a
    baseline, a metric regresses when it dropped by more than its allowed drop AND the
    drop is beyond the confidence interval (paired bootstrap on per-question values
    when both runs have them, else non-overlapping CIs; see ``report.compare``).
    """
    failures = _check_bounds(scored, thresholds)
    if baseline is not None:
        failures += _check_regressions(scored, baseline, thresholds.get("regression", {}))
    return failures
