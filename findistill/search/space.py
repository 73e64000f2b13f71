"""A search space: distributions over a stage's parameters, read from YAML, validated before any
trial runs, and sampled by an Optuna trial (define-by-run, so conditional parameters are sampled
only where they matter).

The file has up to four sections::

    parameters:                  # searched, one distribution each
      temperature:    {type: float, low: 1.0, high: 8.0, log: true}
      student_layers: {type: int, low: 1, high: 4}
      word_pooling:   {type: categorical, choices: [first, mean]}
    fixed:                       # the same value in every trial
      epochs: 3
    retrain:                     # overrides for retraining the chosen trials with the full budget
      epochs: 6
    budget:                      # students under a parameter cap (findistill.search.budget)
      max_params: 0.30
      fill: intermediate_size

A distribution: ``type`` float / int (``low``, ``high``, optional ``log`` or ``step``) or
categorical (``choices``: strings, numbers or booleans). A parameter listed in
:data:`CONDITIONS` is sampled only when its parent's value makes it matter (``vocab_size`` only
for a domain vocabulary, ``transfer_ratio`` only with a transfer set...); otherwise the trial
keeps the stage's default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from findistill.config import ConfigError
from findistill.search.budget import Budget, parse_budget

KINDS = ("float", "int", "categorical")
SECTIONS = ("parameters", "fixed", "retrain", "budget")
#: the sections that map parameter names to distributions or values
VALUE_SECTIONS = SECTIONS[:3]
_KEYS = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"},
         "categorical": {"type", "choices"}}

#: child parameter -> (parent parameter, does the parent's value make the child matter?)
CONDITIONS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "vocab_size": ("vocab_method", lambda method: method != "same"),
    "vocab_transfer": ("vocab_method", lambda method: method != "same"),
    "transfer_ratio": ("transfer_data", lambda data: data != "none"),
    "hidden_loss": ("hidden_weight", lambda weight: float(weight) > 0),
    "hidden_layers": ("hidden_weight", lambda weight: float(weight) > 0),
}


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: ``kind`` float/int (``low``..``high``, ``log`` scale or ``step``) or
    categorical (``choices``)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_categorical(self.name, list(self.choices))

    def probes(self) -> list[Any]:
        """Values whose acceptance by the stage stands for the whole dimension: both ends of a range,
        every choice."""
        if self.kind == "categorical":
            return list(self.choices)
        cast = int if self.kind == "int" else float
        return [cast(self.low), cast(self.high)]

    def describe(self) -> str:
        if self.kind == "categorical":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        scale = " log" if self.log else (f" step {self.step:g}" if self.step else "")
        return f"{self.kind} [{self.low:g}, {self.high:g}]{scale}"


@dataclass
class SearchSpace:
    """The validated content of a search-space file."""

    dimensions: list[Dimension]
    fixed: dict[str, Any] = field(default_factory=dict)
    retrain: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    budget: Budget | None = None

    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def suggest(self, trial) -> dict[str, Any]:
        """The trial's values: every dimension whose condition holds, parents before children."""
        values: dict[str, Any] = {}
        for dim in self.dimensions:
            condition = CONDITIONS.get(dim.name)
            if condition is not None:
                parent, matters = condition
                parent_value = values.get(parent, self.fixed.get(parent))
                if parent_value is not None and not matters(parent_value):
                    continue
            values[dim.name] = dim.suggest(trial)
        return values

    def describe(self) -> str:
        lines = [f"  {d.name}: {d.describe()}" for d in self.dimensions]
        lines += [f"  {k} = {v} (fixed)" for k, v in self.fixed.items()]
        if self.budget is not None:
            lines.append(self.budget.describe())
        return "\n".join(lines)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _dimension(name: str, spec: Any, problems: list[str]) -> Dimension | None:
    """Parse one ``parameters`` entry; append one line per problem to ``problems``."""
    where = f"parameters.{name}"
    if not isinstance(spec, Mapping):
        problems.append(f"{where}: expected a mapping such as {{type: float, low: 1, high: 8}}, got {spec!r}")
        return None
    kind = spec.get("type")
    if kind not in KINDS:
        problems.append(f"{where}: 'type' must be one of {', '.join(KINDS)}, got {kind!r}")
        return None
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)} for type {kind} "
                        f"(allowed: {', '.join(sorted(_KEYS[kind]))})")
        return None
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            problems.append(f"{where}: 'choices' must be a non-empty list, got {choices!r}")
            return None
        odd = [c for c in choices if not (c is None or isinstance(c, (str, bool)) or _number(c))]
        if odd:
            problems.append(f"{where}: choices must be strings, numbers or booleans, got {odd[0]!r}")
            return None
        if len(set(map(repr, choices))) < len(choices):
            problems.append(f"{where}: repeated choice in {choices!r}")
            return None
        return Dimension(name, kind, choices=tuple(choices))
    low, high, log, step = spec.get("low"), spec.get("high"), spec.get("log", False), spec.get("step")
    if not (_number(low) and _number(high)):
        problems.append(f"{where}: 'low' and 'high' must both be numbers, got low={low!r}, high={high!r}")
        return None
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        problems.append(f"{where}: an int range needs whole-number bounds, got low={low!r}, high={high!r}")
        return None
    if low > high:
        problems.append(f"{where}: low {low!r} > high {high!r}")
        return None
    if low == high:
        problems.append(f"{where}: empty range (low = high = {low!r}); put a single value under 'fixed' instead")
        return None
    if not isinstance(log, bool):
        problems.append(f"{where}: 'log' must be true or false, got {log!r}")
        return None
    if log and low <= 0:
        problems.append(f"{where}: a log scale needs low > 0, got low={low!r}")
        return None
    if step is not None:
        if log:
            problems.append(f"{where}: 'step' and 'log' cannot be combined")
            return None
        if not _number(step) or step <= 0 or (kind == "int" and not float(step).is_integer()):
            problems.append(f"{where}: 'step' must be a positive {'integer' if kind == 'int' else 'number'}, "
                            f"got {step!r}")
            return None
    return Dimension(name, kind, low=low, high=high, log=log, step=step)


def _ordered(dimensions: list[Dimension]) -> list[Dimension]:
    """Parents before the children of :data:`CONDITIONS` (file order otherwise)."""
    parents = {CONDITIONS[d.name][0] for d in dimensions if d.name in CONDITIONS}
    return [d for d in dimensions if d.name in parents] + [d for d in dimensions if d.name not in parents]


def parse_space(payload: Any, source: str, *, allowed: Iterable[str],
                check: Callable[[dict[str, Any]], str | None]) -> SearchSpace:
    """Validate ``payload`` (the parsed YAML) and return the space; raise ConfigError naming the entry at
    fault: one line for a single problem, else the count and then every problem, one line each.

    ``allowed``: the parameter names a trial may set. ``check(values)``: the stage's verdict on a
    set of parameter values (None when it accepts them, else the reason); every range end and
    every choice is checked together with the fixed values, and the fixed and retrain values too;
    a value is refused only when neither alone nor beside the lowest or the highest values of the
    other searched parameters it is accepted.
    """
    problems: list[str] = []
    allowed = set(allowed)
    if not isinstance(payload, Mapping):
        raise ConfigError(f"search space {source}: expected a mapping with sections {', '.join(SECTIONS)}, "
                          f"got {type(payload).__name__}")
    for key in sorted(set(payload) - set(SECTIONS)):
        problems.append(f"{key}: unknown section (expected {', '.join(SECTIONS)})")
    sections: dict[str, dict[str, Any]] = {}
    for section in VALUE_SECTIONS:
        content = payload.get(section) or {}
        if not isinstance(content, Mapping):
            problems.append(f"{section}: expected a mapping of parameter names, got {content!r}")
            content = {}
        sections[section] = dict(content)
        for name in sorted(set(content) - allowed):
            problems.append(f"{section}.{name}: unknown parameter (searchable: {', '.join(sorted(allowed))})")
    if not sections["parameters"]:
        problems.append("parameters: nothing to search (give at least one parameter with a distribution)")
    both = sorted(set(sections["parameters"]) & set(sections["fixed"]))
    problems += [f"fixed.{name}: also under 'parameters'; keep one of the two" for name in both]
    budget = parse_budget(payload.get("budget"), problems)
    if budget is not None and budget.fill:
        problems += [f"{section}.{budget.fill}: the budget fills it (budget.fill); leave it out of '{section}'"
                     for section in VALUE_SECTIONS if budget.fill in sections[section]]
    dimensions = []
    for name, spec in sections["parameters"].items():
        if name in allowed:
            dim = _dimension(name, spec, problems)
            if dim is not None:
                dimensions.append(dim)
    fixed = {k: v for k, v in sections["fixed"].items() if k in allowed}
    retrain = {k: v for k, v in sections["retrain"].items() if k in allowed}
    for section, values in (("fixed", fixed), ("retrain", retrain)):
        for name, value in values.items():
            if isinstance(value, (Mapping, list)):
                problems.append(f"{section}.{name}: expected a single value, got {value!r}")
    if not problems:
        # a value is rejected when the stage refuses it alone and beside the lowest and the highest values of
        # the other searched parameters (a fixed frequency weighting needs the searched rank); the value a
        # budget fills stands in for each trial's
        filled = {budget.fill: budget.multiple_of} if budget is not None and budget.fill else {}
        contexts = [filled] + [{**{d.name: d.probes()[end] for d in dimensions}, **filled} for end in (0, -1)]

        def verdict(values: dict[str, Any]) -> str | None:
            reasons = [check({**context, **values}) for context in contexts]
            return reasons[0] if all(reasons) else None

        for section, values in (("fixed", fixed), ("retrain", {**fixed, **retrain})):
            reason = verdict(values)
            if reason:
                problems.append(f"{section}: {reason}")
        for dim in dimensions:
            for value in dim.probes():
                reason = verdict({**fixed, dim.name: value})
                if reason:
                    problems.append(f"parameters.{dim.name}: {value!r} is rejected: {reason}")
                    break
    if len(problems) == 1:
        raise ConfigError(f"search space {source}: {problems[0]}")
    if problems:
        raise ConfigError(f"search space {source}: {len(problems)} problem(s)\n"
                          + "\n".join(f"  - {p}" for p in problems))
    return SearchSpace(_ordered(dimensions), fixed, retrain, source, budget)


def load_space(path: str | Path, *, allowed: Iterable[str], check: Callable[[dict[str, Any]], str | None]
               ) -> SearchSpace:
    """Read and validate a search-space YAML file (see :func:`parse_space`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameter 'space': no search-space file at {path} (a YAML file; see "
                          "configs/search-space.yaml)")
    try:
        payload = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"search space {path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    return parse_space(payload, str(path), allowed=allowed, check=check)
