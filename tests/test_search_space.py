"""Search spaces: both JSON forms, validation errors that name file and fix, reproducible Halton points."""

import json
import math

import numpy as np
import pytest

from common import search_space as ss


def write(tmp_path, obj, text=None):
    path = tmp_path / "space.json"
    path.write_text(text if text is not None else json.dumps(obj))
    return str(path)


def test_radical_inverse_closed_form():
    assert [ss._radical_inverse(k, 2) for k in (1, 2, 3, 4, 5)] == [0.5, 0.25, 0.75, 0.125, 0.625]
    assert ss._radical_inverse(5, 3) == pytest.approx(2 / 3 + 1 / 9)  # 5 = 12 in base 3 -> 0.21
    assert ss._primes(6) == [2, 3, 5, 7, 11, 13]


def test_list_form_is_used_in_file_order(tmp_path):
    points = [{"learning_rate": 0.1, "name": "a"}, {"learning_rate": 0.2, "name": "b"}]
    space = ss.load(write(tmp_path, points))
    assert space.points(2) == points
    with pytest.raises(ss.SearchSpaceError, match="3 trials requested but the list holds 2"):
        space.points(3)


def test_halton_points_are_reproducible_scaled_and_in_range(tmp_path):
    raw = {
        "lr": {"min": 1e-4, "max": 1e-1, "scaling": "log"},
        "wd": {"min": 0.0, "max": 0.5, "scaling": "linear"},
        "act": {"feasible_points": ["relu", "gelu", "silu"]},
    }
    space = ss.load(write(tmp_path, raw))
    a, b, c = space.points(64, seed=1), space.points(64, seed=1), space.points(64, seed=2)
    assert a == b and a != c
    lrs = np.array([p["lr"] for p in a])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-1
    # log scaling: log10(lr) is spread evenly over [-4, -1], so about a third of points fall in each decade
    decades = np.histogram(np.log10(lrs), bins=[-4, -3, -2, -1])[0]
    assert all(abs(d - 64 / 3) <= 4 for d in decades)
    assert {p["act"] for p in a} == {"relu", "gelu", "silu"}
    assert all(0.0 <= p["wd"] <= 0.5 for p in a)


def test_halton_matches_the_algoperf_rule_by_hand(tmp_path):
    space = ss.parse({"x": {"min": 1.0, "max": 100.0, "scaling": "log"}})
    shift = np.random.default_rng(5).random(1)[0]
    u = (ss._radical_inverse(101, 2) + shift) % 1.0  # first 100 points skipped; base 2 for the only dimension
    assert space.points(1, seed=5)[0]["x"] == pytest.approx(1.0 * math.exp(u * math.log(100.0)))


def test_make_hyperparameters_is_a_namedtuple():
    hp = ss.make_hyperparameters({"learning_rate": 0.1, "beta2": 0.99})
    assert type(hp).__name__ == "Hyperparameters" and hp.learning_rate == 0.1 and hp._asdict()["beta2"] == 0.99


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"lr": {"min": 1, "max": 2, "scaling": "cubic"}}, "unknown scaling 'cubic'"),
        ({"lr": {"min": 2, "max": 1, "scaling": "linear"}}, "min 2 > max 1; swap them"),
        ({"lr": {"min": 0, "max": 1, "scaling": "log"}}, "log scaling with min 0 <= 0"),
        ({"lr": {"feasible_points": []}}, "empty feasible_points"),
        ({"lr": {"min": "a", "max": 1, "scaling": "linear"}}, "lr.min='a' is not a finite number"),
        ({"lr": {"feasible_points": [1, None]}}, "non-numeric feasible point None"),
        ({"lr": {"min": 1, "scaling": "linear"}}, "lacks max"),
        ([], "list of points is empty"),
        ([{"lr": [1, 2]}], "is not a number"),
        ({}, "expected a non-empty object"),
    ],
)
def test_bad_spaces_name_file_and_problem(tmp_path, raw, message):
    path = write(tmp_path, raw)
    with pytest.raises(ss.SearchSpaceError, match=message) as e:
        ss.load(path)
    assert path in str(e.value) and "\n" not in str(e.value)


def test_malformed_json_and_missing_file(tmp_path):
    path = write(tmp_path, None, text="{not json")
    with pytest.raises(ss.SearchSpaceError, match="is not valid JSON"):
        ss.load(path)
    with pytest.raises(ss.SearchSpaceError, match="does not exist"):
        ss.load(str(tmp_path / "missing.json"))
