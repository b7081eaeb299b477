"""The two choices benchmarks make from their measurements: the leaderboard's worker count (benchmarks/contention.py)
and a workload's eval period (benchmarks/eval_cost.py), against hand-computed cases."""

import pytest

from benchmarks.contention import chosen_workers
from benchmarks.eval_cost import period


def row(workload, k, factor):
    return {"workload": workload, "workers": k, "factor": factor}


def test_the_most_workers_under_the_limit_on_every_workload():
    rows = [
        row("a", 1, 1.0),
        row("b", 1, 1.02),
        row("a", 2, 1.05),
        row("b", 2, 1.09),
        row("a", 3, 1.3),
        row("b", 3, 1.0),
    ]
    assert chosen_workers(rows) == 2  # 3 workers slow a down by 1.3x
    assert chosen_workers([row("a", 2, 1.1)]) == 1  # the limit itself is too much; 1 worker is the floor
    assert chosen_workers([row("a", 1, 1.5), row("a", 2, 1.2)]) == 1


@pytest.mark.parametrize(
    "eval_sec, time_to_target, expected",
    [
        (1.0, 40.0, 3.0),  # eval-bound: 3 x 1 s keeps evaluation at 25% of the wall clock
        (0.1, 40.0, 1.0),  # resolution-bound: 2.5% of 40 s
        (0.1, 100.0, 2.5),
        (0.7, 30.0, 2.5),  # 2.1 s rounded up to the half second
    ],
)
def test_eval_period_closed_forms(eval_sec, time_to_target, expected):
    assert period(eval_sec, time_to_target) == expected
    assert eval_sec / (eval_sec + expected) <= 0.25 + 1e-12
