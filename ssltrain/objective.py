"""trainer.objective: the number of results.json a run returns to Hydra's sweeper (an
Optuna search optimises it). Checked against the numbers the run can write before any
work, so a misspelt metric fails a sweep at once rather than after its first job trains.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, Optional

from ssltrain.errors import UserError
from ssltrain.registry import EVALUATORS
from ssltrain.runtime.run_files import RUN_NUMBERS, result_numbers


def possible_numbers(evaluators: list[str], method_reports: tuple[str, ...] = ()) -> list[str]:
    """The numbers (names or patterns) a run with these evaluators, whose method reports
    `method_reports` (SSLMethod.reports), may write to results.json."""
    return [*RUN_NUMBERS, *method_reports, *(name for evaluator in evaluators for name in EVALUATORS.metrics(evaluator))]


def check_objective(name: Optional[str], evaluators: list[str], method_reports: tuple[str, ...] = ()) -> None:
    """One line listing the possible numbers when trainer.objective names none of them."""
    numbers = possible_numbers(evaluators, method_reports)
    if name is not None and not any(fnmatchcase(name, pattern) for pattern in numbers):
        raise UserError(f"trainer.objective={name} is not a number that this run (eval={','.join(evaluators)}) "
                        f"writes to results.json; choose one of: {', '.join(numbers)}")


def objective(results: dict[str, Any], name: Optional[str]) -> Optional[float]:
    """results[name] as the float a Hydra sweeper optimises (trainer.objective), or None
    when no objective is named; one line naming the numbers there when it is not one of
    them (e.g. images_per_second of a run that trained no epoch)."""
    if name is None:
        return None
    numbers = list(result_numbers(results))
    if name not in numbers:
        raise UserError(f"trainer.objective={name} is not a number of this run's results.json; choose one of: "
                        f"{', '.join(numbers)}")
    return float(results[name])
