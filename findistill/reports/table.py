"""The comparison table: one row per model configuration (seeds grouped: F1 mean ± sd), its costs, and
which rows are on the quality/cost Pareto fronts.

A :class:`Model` is one measured model (a run's or a registered version's); :func:`group` folds the
models that differ only in their seed into a :class:`Row`; :func:`mark_fronts` marks the rows no other
row beats on F1 and a cost at once.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass, field

#: the costs of a row, as (metric, title, format); lower is better for each
COSTS = (
    ("params_total", "params", "{:,.0f}"),
    ("model_size_mb", "size MB", "{:.1f}"),
    ("latency_cpu_b1_ms_p50", "CPU b1 ms", "{:.2f}"),
    ("latency_cpu_b32_ms_p50", "CPU b32 ms", "{:.1f}"),
    ("throughput_cpu_words_per_s", "words/s CPU", "{:,.0f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
    ("latency_gpu_b1_ms_p50", "GPU b1 ms", "{:.2f}"),
    ("gpu_peak_mem_mb", "GPU MB", "{:.0f}"),
)
#: the fronts drawn: (name, cost metric); F1 is maximised, the cost minimised
FRONTS = (("latency", "latency_cpu_b1_ms_p50"), ("size", "model_size_mb"))


@dataclass
class Model:
    """One measured model: ``label`` names its configuration (models with the same ``key`` are seeds of
    one configuration), ``f1``/``validation_f1`` its scores (NaN when not measured), ``costs`` its
    resource metrics, ``uri`` where it is loaded from."""

    label: str
    key: str
    role: str
    runtime: str
    f1: float
    validation_f1: float = math.nan
    costs: dict[str, float] = field(default_factory=dict)
    uri: str = ""
    run_id: str = ""
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class Row:
    """A configuration: its models' F1 mean and sample sd (0 for one seed), their mean costs, and the
    fronts it is on."""

    label: str
    role: str
    runtime: str
    f1_mean: float
    f1_sd: float
    seeds: int
    validation_f1: float
    costs: dict[str, float]
    uris: list[str]
    run_ids: list[str]
    details: dict[str, str]
    fronts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"label": self.label, "role": self.role, "runtime": self.runtime, "f1_mean": self.f1_mean,
                "f1_sd": self.f1_sd, "seeds": self.seeds, "validation_f1": self.validation_f1, **self.costs,
                "pareto": ",".join(self.fronts), "uris": " ".join(self.uris), "run_ids": " ".join(self.run_ids),
                **{f"detail.{k}": v for k, v in self.details.items()}}


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def group(models: list[Model]) -> list[Row]:
    """One row per ``key``, in the order the keys first appear; a label shared by two keys gets the
    number of its key appended (``distill s2-dom16k #2``)."""
    by_key: dict[str, list[Model]] = {}
    for model in models:
        by_key.setdefault(model.key, []).append(model)
    rows = []
    for members in by_key.values():
        scores = [m.f1 for m in members if math.isfinite(m.f1)]
        names = sorted({name for m in members for name in m.costs})
        rows.append(Row(
            label=members[0].label, role=members[0].role, runtime=members[0].runtime,
            f1_mean=_mean(scores), f1_sd=statistics.stdev(scores) if len(scores) > 1 else 0.0, seeds=len(members),
            validation_f1=_mean([m.validation_f1 for m in members]),
            costs={name: _mean([m.costs.get(name, math.nan) for m in members]) for name in names},
            uris=[m.uri for m in members], run_ids=[m.run_id for m in members], details=members[0].details,
        ))
    seen: dict[str, int] = {}
    for row in rows:
        seen[row.label] = seen.get(row.label, 0) + 1
        if seen[row.label] > 1:
            row.label = f"{row.label} #{seen[row.label]}"
    return rows


def pareto_front(rows: list[Row], cost: str) -> list[Row]:
    """The rows with F1 and ``cost`` that no other such row matches or beats on both (higher F1, lower
    cost) while beating on one; sorted by cost."""
    measured = [r for r in rows if math.isfinite(r.f1_mean) and math.isfinite(r.costs.get(cost, math.nan))]

    def dominated(row: Row) -> bool:
        return any(o.f1_mean >= row.f1_mean and o.costs[cost] <= row.costs[cost]
                   and (o.f1_mean > row.f1_mean or o.costs[cost] < row.costs[cost]) for o in measured)

    return sorted((r for r in measured if not dominated(r)), key=lambda r: r.costs[cost])


def mark_fronts(rows: list[Row]) -> list[Row]:
    """Set each row's ``fronts`` to the names of :data:`FRONTS` it is on; return the rows."""
    for row in rows:
        row.fronts = []
    for name, cost in FRONTS:
        for row in pareto_front(rows, cost):
            row.fronts.append(name)
    return rows


def _cell(value: float, fmt: str) -> str:
    return fmt.format(value) if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def f1_text(row: Row) -> str:
    """``0.7514 ± 0.0042 (3)`` for seeds, ``0.7514`` for one model, ``n/a`` when not measured."""
    if not math.isfinite(row.f1_mean):
        return "n/a"
    return f"{row.f1_mean:.4f} ± {row.f1_sd:.4f} ({row.seeds})" if row.seeds > 1 else f"{row.f1_mean:.4f}"


def columns(rows: list[Row]) -> list[tuple[str, str, str]]:
    """The cost columns some row has a value for."""
    return [c for c in COSTS if any(math.isfinite(r.costs.get(c[0], math.nan)) for r in rows)]


def markdown(rows: list[Row], split: str) -> str:
    """The table in Markdown, best F1 first; the last column names the fronts a row is on."""
    shown = columns(rows)
    lines = [f"| model | role | runtime | {split} F1 | validation F1 | "
             + " | ".join(title for _, title, _ in shown) + " | Pareto |",
             "|---|---|---|---:|---:|" + "---:|" * len(shown) + "---|"]
    for row in sorted(rows, key=lambda r: -r.f1_mean if math.isfinite(r.f1_mean) else math.inf):
        cells = [_cell(row.costs.get(metric, math.nan), fmt) for metric, _, fmt in shown]
        lines.append(f"| {row.label} | {row.role} | {row.runtime} | {f1_text(row)} | "
                     f"{_cell(row.validation_f1, '{:.4f}')} | " + " | ".join(cells)
                     + f" | {', '.join(row.fronts) or ''} |")
    return "\n".join(lines) + "\n"


def to_csv(rows: list[Row]) -> str:
    return csv_text([row.as_dict() for row in rows])


def csv_text(records: list[dict]) -> str:
    """``records`` as CSV; the columns are every key, in the order they first appear."""
    names = list(dict.fromkeys(k for record in records for k in record))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names)
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()
