"""Run every ``tests/bench/bench_*.py`` module, print a table, write build/bench.json.

Each module has ``run() -> list[Metric]`` (sync) or ``async def run()``.
Usage: ``python -m tests.bench [NAME-SUBSTRING ...]``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import pathlib
import sys
import traceback

from tests.bench.harness import Metric

HERE = pathlib.Path(__file__).parent
OUT = pathlib.Path("build/bench.json")


def main(argv: list[str]) -> int:
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if argv:
        modules = [m for m in modules if any(a in m for a in argv)]
    metrics: list[Metric] = []
    failed: list[str] = []
    for name in modules:
        print(f"running {name} …", file=sys.stderr, flush=True)
        try:
            mod = importlib.import_module(f"tests.bench.{name}")
            result = mod.run()
            if inspect.isawaitable(result):
                result = asyncio.run(result)
            metrics.extend(result)
        except Exception:
            traceback.print_exc()
            failed.append(name)
    print_table(metrics)
    OUT.parent.mkdir(exist_ok=True)
    existing: dict[str, object] = {}
    if argv and OUT.exists():
        existing = json.loads(OUT.read_text()).get("metrics", {})
    existing.update({m.name: m.as_json() for m in metrics})
    OUT.write_text(json.dumps({"metrics": existing}, indent=2) + "\n")
    print(f"\nwrote {OUT}", file=sys.stderr)
    return verdict(metrics, failed)


def print_table(metrics: list[Metric]) -> None:
    """The table: each metric, its same-run baseline, the ratio and whether its target held."""
    print(
        f"\n{'metric':<28}{'value':>14} {'unit':<8}{'baseline':>14}{'ratio':>9}  {'met':<4} target"
    )
    for m in metrics:
        base = "-" if m.baseline is None else f"{m.baseline:,.3f}"
        ratio = "-" if m.ratio is None else f"{m.ratio:.2f}"
        met = {True: "yes", False: "NO", None: "-"}[m.met if m.target else None]
        print(f"{m.name:<28}{m.value:>14,.3f} {m.unit:<8}{base:>14}{ratio:>9}  {met:<4} {m.target}")
        for k, v in m.extra.items():
            print(f"  {k:<26}{v:>14,.3f}")


def verdict(metrics: list[Metric], failed: list[str]) -> int:
    """Say which targets were missed (and which benchmarks broke); 1 if any, else 0."""
    unchecked = [m.name for m in metrics if m.target and m.met is None]
    if unchecked:
        print(f"targets without a verdict: {', '.join(unchecked)}", file=sys.stderr)
    missed = [m.name for m in metrics if m.target and m.met is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
    else:
        print(f"every target met ({sum(bool(m.target) for m in metrics)})", file=sys.stderr)
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
