"""`ssltrain-compare DIR...`: one table (Markdown and CSV) and one bar chart of the metrics
of every run under the given run or sweep folders.

It reads results.json files only, so it imports neither torch nor Hydra; the chart needs
matplotlib (the `plots` extra), the tables nothing.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ssltrain.errors import UserError
from ssltrain.runtime.run_files import LABEL_COUNTS, RESULTS_FILE, RUN_NUMBERS, result_numbers

PROG = "ssltrain-compare"
# Numbers in results.json that describe a run rather than score it; every other number is a metric.
BOOKKEEPING = frozenset({*RUN_NUMBERS, *LABEL_COUNTS})
PLOTS_HINT = "pip install 'ssltrain[plots]'"
# A sweep job's folder: <job number>-<run name>-<the swept overrides> (configs/config.yaml).
SWEPT_OVERRIDES = re.compile(r"^\d+-.*?-([^-=]+=.*)$")


@dataclass
class Run:
    folder: Path  # as found under the DIR given
    results: dict[str, Any]

    @property
    def metrics(self) -> dict[str, float]:
        return {key: value for key, value in result_numbers(self.results).items() if key not in BOOKKEEPING}

    @property
    def baseline(self) -> bool:
        return self.results.get("epochs") == 0

    def describe(self) -> str:
        """method / encoder / epochs / dataset, and a sweep job's swept overrides."""
        epochs = self.results.get("epochs")
        parts = [self.results.get("method") or "backbone.pt", self.results.get("encoder"),
                 "random init" if self.baseline else None if epochs is None else f"{epochs} epoch{'s' * (epochs != 1)}",
                 self.results.get("dataset")]
        swept = SWEPT_OVERRIDES.match(self.folder.name)
        return " / ".join(str(part) for part in [*parts, swept and swept.group(1)] if part)


def _natural_key(path: Path) -> list:
    """Sorts sweep jobs 2-... before 10-...."""
    return [(0, int(piece), "") if piece.isdigit() else (1, 0, piece) for piece in re.split(r"(\d+)", str(path))]


def find_runs(directories: list[Path]) -> list[Run]:
    """Every readable results.json under the folders, in path order; unreadable ones are
    named in a warning and skipped."""
    for directory in directories:
        if not directory.is_dir():
            raise UserError(f"{directory}: no such folder")
    found = {path.resolve(): path for directory in directories for path in directory.rglob(RESULTS_FILE)}
    if not found:
        raise UserError(f"no {RESULTS_FILE} under {', '.join(map(str, directories))}")
    runs = []
    for path in sorted(found.values(), key=_natural_key):
        try:
            results = json.loads(path.read_text())
            if not isinstance(results, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            print(f"{PROG}: warning: skipping {path}: {error}", file=sys.stderr)
            continue
        runs.append(Run(path.parent, results))
    if not runs:
        raise UserError(f"none of the {len(found)} {RESULTS_FILE} files found could be read")
    return runs


def labels(runs: list[Run]) -> list[str]:
    """Each run's description; runs that describe alike also get their folder."""
    names = [run.describe() for run in runs]
    return [f"{name} ({run.folder})" if names.count(name) > 1 else name for name, run in zip(names, runs)]


def metric_columns(runs: list[Run], chosen: Optional[list[str]]) -> list[str]:
    """The chosen metrics, or every one some run has, in the order they first appear."""
    present = list(dict.fromkeys(key for run in runs for key in run.metrics))
    unknown = [name for name in chosen or () if name not in present]
    if unknown:
        raise UserError(f"--metrics: no run has {', '.join(unknown)}; they have: {', '.join(present) or 'none'}")
    return chosen or present


def markdown(runs: list[Run], names: list[str], columns: list[str]) -> str:
    def cell(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value).replace("|", r"\|")

    header = ["run", *columns, "folder"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run, name in zip(runs, names):
        cells = [cell(name), *(cell(run.metrics.get(column)) for column in columns), cell(run.folder)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_text(runs: list[Run], names: list[str], columns: list[str]) -> str:
    """The same table; numbers at full precision, missing ones empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", *columns, "folder"])
    for run, name in zip(runs, names):
        writer.writerow([name, *(run.metrics.get(column, "") for column in columns), run.folder])
    return out.getvalue()


def charted_metrics(runs: list[Run], columns: list[str]) -> list[str]:
    """The columns whose values all lie in [0, 1] (accuracies, NMI, recall...): one scale."""
    def values(column: str) -> list[float]:
        return [value for run in runs if (value := run.metrics.get(column)) is not None and not math.isnan(value)]

    return [column for column in columns if values(column) and all(0 <= value <= 1 for value in values(column))]


def bar_chart(runs: list[Run], names: list[str], columns: list[str], path: Path) -> None:
    """Grouped bars: a group per metric, a bar per run (hatched: the random-init baseline)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    width, tilt = 0.8 / len(runs), len(columns) > 4
    colours = matplotlib.colormaps["tab10" if len(runs) <= 10 else "tab20"]
    figure, axes = pyplot.subplots(figsize=(max(6.0, 2.0 + 0.3 * len(runs) * len(columns)), 4.5))
    for index, (run, name) in enumerate(zip(runs, names)):
        heights = [run.metrics.get(column, math.nan) for column in columns]
        positions = [group + (index - (len(runs) - 1) / 2) * width for group in range(len(columns))]
        axes.bar(positions, heights, width, label=name, color=colours(index % colours.N),
                 hatch="//" if run.baseline else None, edgecolor="white")
    axes.set_xticks(range(len(columns)), columns, rotation=30 if tilt else 0, ha="right" if tilt else "center")
    axes.set_ylim(0, 1)
    axes.set_ylabel("value")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2 if tilt else -0.1), fontsize="small")
    figure.savefig(path, dpi=120, bbox_inches="tight")
    pyplot.close(figure)


def write_chart(runs: list[Run], names: list[str], columns: list[str], path: Path) -> str:
    """Draws the chart when it can; returns what happened, in one line."""
    charted = charted_metrics(runs, columns)
    left_out = [column for column in columns if column not in charted]
    reason = "no metric in [0, 1] to chart"
    if importlib.util.find_spec("matplotlib") is None:
        charted, reason = [], f"the chart needs matplotlib: {PLOTS_HINT}"
    if not charted:
        path.unlink(missing_ok=True)  # an older chart would no longer match the table
        return f"no {path.name}: {reason}"
    bar_chart(runs, names, charted, path)
    return f"wrote {path}" + (f" (left out, not in [0, 1]: {', '.join(left_out)})" if left_out else "")


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=(
        "Compare the metrics of every run under the given run or sweep folders: writes comparison.md, "
        "comparison.csv and comparison.png (the chart needs " + PLOTS_HINT + ") and prints the table."))
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="a run folder, or a folder of runs "
                        "(searched recursively for results.json), e.g. multirun/2026-12-01/10-00-00-123456")
    parser.add_argument("--output", type=Path, default=None,
                        help="where the three files go (default: the folder that holds every DIR; DIR itself for one)")
    parser.add_argument("--metrics", default=None, help="comma-separated metric columns, in this order "
                        "(default: every metric some run has, e.g. knn_top1,linear_top1)")
    return parser.parse_args(argv)


def compare(directories: list[Path], output: Optional[Path], chosen: Optional[list[str]]) -> str:
    """Writes the table and chart; returns the Markdown table."""
    runs = find_runs(directories)
    names, columns = labels(runs), metric_columns(runs, chosen)
    output = output or Path(os.path.commonpath([directory.resolve() for directory in directories]))
    table = markdown(runs, names, columns)
    try:
        output.mkdir(parents=True, exist_ok=True)
        (output / "comparison.md").write_text(table)
        (output / "comparison.csv").write_text(csv_text(runs, names, columns))
    except OSError as error:
        raise UserError(f"cannot write to {output} ({error.strerror or error}); choose another with --output") from None
    print(f"{PROG}: {len(runs)} runs; wrote {output / 'comparison.md'} and comparison.csv", file=sys.stderr)
    print(f"{PROG}: {write_chart(runs, names, columns, output / 'comparison.png')}", file=sys.stderr)
    return table


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    chosen = [name.strip() for name in args.metrics.split(",") if name.strip()] if args.metrics else None
    try:
        print(compare(args.dirs, args.output, chosen), end="")
    except UserError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
