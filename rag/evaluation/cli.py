"""`rag eval`: run, score and report in one command, with an optional CI gate.

rag eval                         # bundled gold set over data/ (offline, no ../shared needed)
rag eval --suite fast --gate     # what CI runs: gold + small MultiHop-RAG/CNN-DM/XSum subsets
rag eval --suite full            # the numbers in the README
rag eval --stage score --run-file eval/runs/fast/run.jsonl   # re-score a saved run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import RagError
from rag.evaluation.runner import REPO, SUITES, _eval_dir
from rag.evaluation.runner import run as run_suite
from rag.types import Progress

# The scorer, the report and the gate (rouge-score, nltk) are imported only when evaluating: the
# `rag` parser adds these arguments for every command, `rag --help` included.


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `rag eval`."""
    p.add_argument("--suite", default="gold", choices=sorted(SUITES), help="what to evaluate (default: gold)")
    p.add_argument("--limit", type=int, help="questions per QA dataset (seeded sample)")
    p.add_argument("--stage", default="all", choices=["all", "run", "score", "report"])
    p.add_argument("--run-file", type=Path, help="run file to score (stage score/report)")
    p.add_argument("--out", type=Path, help="output folder (default: eval/runs/<suite>)")
    p.add_argument("--gate", action="store_true", help="exit 1 when a metric is below its floor or regressed")
    p.add_argument(
        "--thresholds",
        type=Path,
        help="thresholds TOML (default: eval/thresholds-<suite>.toml)",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        help="scored baseline to compare with (default: eval/baseline-<suite>.json)",
    )
    p.add_argument(
        "--save-baseline", action="store_true", help="save this run's scores as the suite's baseline"
    )


def _progress() -> Any:
    state = {"last": 0.0}

    def show(done: int, total: int, label: str) -> None:
        now = time.monotonic()
        if done < total and now - state["last"] < (0.2 if sys.stderr.isatty() else 15):
            return
        state["last"] = now
        end = "\n" if (done >= total or not sys.stderr.isatty()) else ""
        sys.stderr.write(f"\r{label}: {done}/{total}{end}")
        sys.stderr.flush()

    return show


def _default(path: Path | None, name: str) -> Path | None:
    if path is not None:
        return path
    candidate = _eval_dir() / name
    return candidate if candidate.exists() else None


def evaluate(
    settings: Settings,
    suite: str,
    out: Path,
    *,
    limit: int | None = None,
    progress: Any = None,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """Run, score and write the reports of one suite; returns the scored result."""
    from rag.evaluation.report import write_report
    from rag.evaluation.scoring import score

    run_file = run_suite(suite, settings, out, limit=limit, progress=progress)
    scored = score(run_file)
    base = _load(_default(baseline, f"baseline-{suite}.json"))
    write_report(scored, out, base)
    return scored


def run_fast(settings: Settings, out_dir: Path, progress: Progress | None = None) -> dict[str, Any]:
    """The fast suite as the page's Evaluate tab runs it."""
    suite = "fast" if (REPO.parent / "shared" / "datasets").is_dir() else "gold"
    return evaluate(settings, suite, Path(out_dir), progress=progress)


def latest_report(out_dir: Path) -> dict[str, Any] | None:
    """The scores of the last run written to ``out_dir``, or None."""
    path = Path(out_dir) / "scores.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _load(path: Path | None) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path and path.exists() else None


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Entry point for `rag eval`; returns the exit code."""
    from rag.evaluation import gate as gate_mod
    from rag.evaluation.report import write_report
    from rag.evaluation.scoring import score

    out = args.out or (REPO / "eval" / "runs" / args.suite)
    progress = _progress()
    if args.stage in ("all", "run"):
        run_file = run_suite(args.suite, settings, out, limit=args.limit, progress=progress)
        if args.stage == "run":
            print(run_file)
            return 0
    else:
        run_file = args.run_file or out / "run.jsonl"
        if not run_file.exists():
            raise RagError(
                f"No run file at {run_file}.", hint="Run `rag eval --stage run` first or pass --run-file."
            )
    scored = score(run_file)
    baseline = _load(_default(args.baseline, f"baseline-{args.suite}.json"))
    paths = write_report(scored, out, baseline)
    if args.save_baseline:
        target = _eval_dir() / f"baseline-{args.suite}.json"
        target.write_text(json.dumps(_slim(scored), indent=1, allow_nan=False) + "\n", encoding="utf-8")
        print(f"saved baseline {target}", file=sys.stderr)
    failures: list[str] = []
    if args.gate:
        thresholds_path = _default(args.thresholds, f"thresholds-{args.suite}.toml")
        if thresholds_path is None:
            raise RagError(f"No thresholds file for suite {args.suite}.", hint="Pass --thresholds FILE.")
        failures = gate_mod.check(scored, gate_mod.load_thresholds(thresholds_path), baseline)
    _print_summary(args, scored, paths, failures)
    return 1 if failures else 0


def _slim(scored: dict[str, Any]) -> dict[str, Any]:
    """A baseline keeps per-question metric values (for paired comparison) but not texts."""
    rows = [{"id": q["id"], "part": q["part"], "values": q["values"]} for q in scored["questions"]]
    return {**{k: v for k, v in scored.items() if k != "questions"}, "questions": rows}


def _print_summary(
    args: argparse.Namespace, scored: dict[str, Any], paths: dict, failures: list[str]
) -> None:
    if args.json:
        print(
            json.dumps(
                {
                    "metrics": scored["metrics"],
                    "baselines": scored["baselines"],
                    "anchors": scored["anchors"],
                    "reports": {k: str(v) for k, v in paths.items()},
                    "gate_failures": failures,
                },
                indent=1,
            )
        )
        return
    print(paths["md"].read_text(encoding="utf-8").split("\n## ")[0])
    print(f"reports: {paths['html']} {paths['md']} {paths['json']}")
    if args.gate:
        print("gate: PASS" if not failures else "gate: FAIL\n  " + "\n  ".join(failures))
