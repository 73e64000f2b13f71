"""A parameter budget: the filled size is the largest that keeps the student under the cap, and a student
the budget cannot hold is found before it trains."""

from __future__ import annotations

import pytest

from findistill.costs.size import count_parameters
from findistill.models.students import student_parameters
from findistill.search.budget import Budget, fit_student, largest_fitting


def test_largest_fitting_finds_the_last_multiple_under_the_cap_by_bisection():
    calls = []

    def count(x):
        calls.append(x)
        return 1000 + 7 * x

    assert largest_fitting(count, 1000 + 7 * 200, upper=1536, step=32) == 192  # 224 would need 2568
    assert len(calls) <= 8  # bisection over 48 multiples, not a scan
    assert largest_fitting(count, 1000 + 7 * 31, upper=1536, step=32) is None
    assert largest_fitting(count, 10**9, upper=1536, step=32) == 1536


def test_the_budget_fills_the_widest_blocks_or_highest_rank_that_fit(tiny_classifier):
    teacher, _ = tiny_classifier  # 2 layers, width 32, 64 feed-forward units, the packaged vocabulary
    sizes = {"n_layers": 1, "selection": "uniform", "vocab_size": 0, "intermediate_size": 0, "embedding_rank": 0,
             "exact_rows": 0}
    cap = student_parameters(teacher, n_layers=1, intermediate_size=40) + 64  # less than 8 more units cost
    filled, params, got_cap = fit_student(Budget(cap, "intermediate_size", 8), teacher, sizes)
    assert filled == {"intermediate_size": 40} and got_cap == cap
    assert params == student_parameters(teacher, n_layers=1, intermediate_size=40) <= cap

    share = Budget(0.3, "embedding_rank", 4)
    teacher_params = count_parameters(teacher)["params_total"]
    filled, params, cap = fit_student(share, teacher, sizes)
    rank = filled["embedding_rank"]
    assert cap == int(0.3 * teacher_params) and rank % 4 == 0 and params <= cap
    assert student_parameters(teacher, n_layers=1, embedding_rank=rank + 4) > cap  # the next rank would not fit
    # two layers leave less for the embeddings: a lower rank, never above the cap
    deeper, params, _ = fit_student(share, teacher, {**sizes, "n_layers": 2})
    assert deeper["embedding_rank"] <= rank and params <= cap


@pytest.mark.parametrize("budget", [Budget(0.3), Budget(0.01, "intermediate_size", 16)])
def test_a_student_the_budget_cannot_hold_is_reported_above_the_cap(tiny_classifier, budget):
    teacher, _ = tiny_classifier  # its embeddings alone are 95% of its parameters
    sizes = {"n_layers": 2, "selection": "uniform", "vocab_size": 0, "intermediate_size": 0, "embedding_rank": 0,
             "exact_rows": 0}
    filled, params, cap = fit_student(budget, teacher, sizes)
    assert params > cap
    assert filled == ({"intermediate_size": 16} if budget.fill else {})
