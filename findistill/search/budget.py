"""A parameter budget for a search: every trial's student stays under a share of the teacher's
parameters, either by filling one size parameter with the largest value the budget allows or by
pruning the trials above it before they train.

In a search-space file::

    budget:
      max_params: 0.30            # a share of the teacher's parameters (<= 1), or a count (> 1)
      fill: intermediate_size     # optional: intermediate_size or embedding_rank, set per trial
      multiple_of: 32             # optional: the filled value is a multiple of this (default 16)

With ``fill`` the sampler searches the other sizes (depth, rank or width, vocabulary) and each trial
gets the widest feed-forward blocks (or the highest embedding rank) that keep its student under
``max_params``: the budget is spent, never exceeded. Without it a trial whose student is larger is
pruned before it trains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedModel

from findistill.models.students import feed_forward_width, student_parameters

#: the size parameters a budget can fill
FILLABLE = ("intermediate_size", "embedding_rank")
_KEYS = {"max_params", "fill", "multiple_of"}


@dataclass(frozen=True)
class Budget:
    """At most ``max_params`` student parameters (a share of the teacher's when <= 1, else a count);
    ``fill``: the size parameter each trial gets as large as fits, in multiples of ``multiple_of``."""

    max_params: float
    fill: str = ""
    multiple_of: int = 16

    def cap(self, teacher_params: int) -> int:
        """The largest student parameter count allowed."""
        return int(self.max_params * teacher_params) if self.max_params <= 1 else int(self.max_params)

    def describe(self) -> str:
        limit = f"{self.max_params:.0%} of the teacher's parameters" if self.max_params <= 1 \
            else f"{int(self.max_params):,} parameters"
        how = (f"{self.fill} filled per trial with the largest multiple of {self.multiple_of} under it"
               if self.fill else "larger students pruned before training")
        return f"  budget: students of at most {limit}; {how}"


def parse_budget(spec: Any, problems: list[str]) -> Budget | None:
    """The ``budget`` section (None when absent); one line per problem appended to ``problems``."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        problems.append(f"budget: expected a mapping such as {{max_params: 0.3, fill: intermediate_size}}, "
                        f"got {spec!r}")
        return None
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        problems.append(f"budget: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_KEYS))})")
        return None
    cap, fill, step = spec.get("max_params"), spec.get("fill") or "", spec.get("multiple_of", 16)
    if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not cap > 0 or (cap > 1 and cap % 1):
        problems.append("budget.max_params: expected a share of the teacher's parameters in (0, 1] or a whole "
                        f"count > 1, got {cap!r}")
        return None
    if fill not in ("", *FILLABLE):
        problems.append(f"budget.fill: expected one of {', '.join(FILLABLE)}, got {fill!r}")
        return None
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        problems.append(f"budget.multiple_of: expected an integer >= 1, got {step!r}")
        return None
    return Budget(float(cap), fill, step)


def largest_fitting(count: Callable[[int], int], cap: int, upper: int, step: int) -> int | None:
    """The largest multiple of ``step`` in ``step..upper`` whose ``count`` (non-decreasing) is at most
    ``cap``; None when even ``step`` is above it. Found by bisection."""
    low, high = 1, upper // step  # in units of step
    if high < 1 or count(step) > cap:
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if count(middle * step) <= cap:
            low = middle
        else:
            high = middle - 1
    return low * step


def fit_student(budget: Budget, teacher: PreTrainedModel, sizes: dict[str, Any]) -> tuple[dict[str, int], int, int]:
    """A trial's student under ``budget``: ``sizes`` are :func:`student_parameters`'s keyword arguments
    (depth, selection, vocabulary rows, width, rank, exact rows). Returns ``{fill: value}`` (``{}``
    without ``fill``; ``multiple_of`` when no value fits), the student's parameter count with it, and
    the cap: a count above the cap means the trial cannot meet the budget."""
    cap = budget.cap(student_parameters(teacher))  # with no cut: the teacher's own count
    filled: dict[str, int] = {}
    if budget.fill:
        if budget.fill == "intermediate_size":
            upper = feed_forward_width(teacher)
        else:
            rows, hidden = teacher.get_input_embeddings().weight.shape
            upper = min(sizes.get("vocab_size") or rows, hidden)
        value = largest_fitting(lambda x: student_parameters(teacher, **{**sizes, budget.fill: x}), cap, upper,
                                budget.multiple_of)
        filled = {budget.fill: value or budget.multiple_of}
        sizes = {**sizes, **filled}
    return filled, student_parameters(teacher, **sizes), cap
