"""The comparison table: seeds folded into rows, and which rows are on the F1/cost Pareto fronts."""

from __future__ import annotations

import math

import pytest

from findistill.reports.table import Model, Row, group, mark_fronts, markdown, pareto_front

LATENCY, SIZE = "latency_cpu_b1_ms_p50", "model_size_mb"


def model(label: str, f1: float, key: str | None = None, **costs: float) -> Model:
    return Model(label=label, key=key or label, role="student", runtime="pytorch-fp32", f1=f1, costs=costs,
                 uri=f"runs:/{label}-{f1}/model", run_id=f"{label}-{f1}")


def row(label: str, f1: float, **costs: float) -> Row:
    return Row(label=label, role="student", runtime="pytorch-fp32", f1_mean=f1, f1_sd=0.0, seeds=1,
               validation_f1=math.nan, costs=costs, uris=[], run_ids=[], details={})


def labels(rows: list[Row]) -> list[str]:
    return [r.label for r in rows]


def test_seeds_of_one_key_give_the_mean_and_sample_sd_of_f1_and_mean_costs():
    rows = group([model("distill L6", 0.70, "L6", **{LATENCY: 10.0}), model("teacher", 0.90, **{LATENCY: 100.0}),
                  model("distill L6", 0.72, "L6", **{LATENCY: 12.0}),
                  model("distill L6", 0.74, "L6", **{LATENCY: 14.0, SIZE: 90.0})])

    assert labels(rows) == ["distill L6", "teacher"]  # in the order the keys first appear
    seeds = rows[0]
    assert seeds.seeds == 3
    assert seeds.f1_mean == pytest.approx(0.72)
    assert seeds.f1_sd == pytest.approx(0.02)  # sample sd (n - 1); the population sd would be 0.0163
    assert seeds.costs == {LATENCY: pytest.approx(12.0), SIZE: 90.0}  # a cost only one seed has is its value
    assert seeds.run_ids == ["distill L6-0.7", "distill L6-0.72", "distill L6-0.74"]


def test_a_single_model_has_sd_zero_and_a_seed_without_f1_is_left_out_of_the_mean():
    single, partial, unmeasured = group([model("one", 0.81), model("two", 0.60, "k"), model("two", math.nan, "k"),
                                         model("none", math.nan)])

    assert (single.f1_mean, single.f1_sd, single.seeds) == (0.81, 0.0, 1)
    assert (partial.f1_mean, partial.f1_sd, partial.seeds) == (0.60, 0.0, 2)
    assert math.isnan(unmeasured.f1_mean) and unmeasured.f1_sd == 0.0


def test_a_label_shared_by_several_keys_gets_its_number_appended():
    rows = group([model("distill s2", 0.8, "a"), model("teacher", 0.9), model("distill s2", 0.7, "b"),
                  model("distill s2", 0.81, "a"), model("distill s2", 0.6, "c")])

    assert labels(rows) == ["distill s2", "teacher", "distill s2 #2", "distill s2 #3"]
    assert rows[0].seeds == 2 and rows[2].f1_mean == 0.7


def test_pareto_front_keeps_the_rows_nothing_beats_on_f1_and_cost_at_once_sorted_by_cost():
    rows = [
        row("teacher", 0.91, **{LATENCY: 110.0}),
        row("slower and worse", 0.85, **{LATENCY: 120.0}),   # teacher beats it on both
        row("L6", 0.88, **{LATENCY: 40.0}),
        row("L6 slower twin", 0.88, **{LATENCY: 45.0}),      # same F1 as L6, slower
        row("L4", 0.86, **{LATENCY: 12.5}),
        row("L4 worse twin", 0.84, **{LATENCY: 12.5}),       # same latency as L4, less accurate
        row("int8", 0.83, **{LATENCY: 3.2}),
        row("best but unmeasured", 0.95),                    # no latency: not on any latency front
        row("not evaluated", math.nan, **{LATENCY: 1.0}),    # no F1: neither on it nor beating anyone
    ]

    assert labels(pareto_front(rows, LATENCY)) == ["int8", "L4", "L6", "teacher"]
    assert pareto_front(rows, SIZE) == []


def test_identical_rows_do_not_push_each_other_off_the_front():
    rows = [row("seed run a", 0.8, **{SIZE: 50.0}), row("seed run b", 0.8, **{SIZE: 50.0}),
            row("bigger", 0.8, **{SIZE: 60.0})]

    assert labels(pareto_front(rows, SIZE)) == ["seed run a", "seed run b"]


def test_mark_fronts_names_the_latency_and_size_fronts_each_row_is_on():
    rows = mark_fronts([
        row("teacher", 0.91, **{LATENCY: 110.0, SIZE: 430.0}),  # most accurate: on both
        row("fast but big", 0.85, **{LATENCY: 5.0, SIZE: 500.0}),
        row("small but slow", 0.85, **{LATENCY: 200.0, SIZE: 20.0}),
        row("neither", 0.80, **{LATENCY: 50.0, SIZE: 100.0}),
        row("no size", 0.86, **{LATENCY: 30.0}),
    ])

    assert {r.label: r.fronts for r in rows} == {
        "teacher": ["latency", "size"], "fast but big": ["latency"], "small but slow": ["size"], "neither": [],
        "no size": ["latency"],
    }


def test_markdown_lists_the_best_f1_first_with_seeds_and_missing_values():
    rows = mark_fronts(group([model("small", 0.80, **{LATENCY: 5.0}), model("big", 0.90, "b", **{LATENCY: 50.0}),
                              model("big", 0.92, "b", **{LATENCY: 50.0}), model("pending", math.nan)]))

    lines = markdown(rows, "test").splitlines()

    assert lines[0] == "| model | role | runtime | test F1 | validation F1 | CPU b1 ms | Pareto |"
    assert lines[2] == "| big | student | pytorch-fp32 | 0.9100 ± 0.0141 (2) | n/a | 50.00 | latency |"
    assert lines[3] == "| small | student | pytorch-fp32 | 0.8000 | n/a | 5.00 | latency |"
    assert lines[4] == "| pending | student | pytorch-fp32 | n/a | n/a | n/a |  |"
