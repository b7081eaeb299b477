"""The runner's eval hooks: named by string, paced by evals, their values written as TensorBoard scalars."""

import pytest

from common.errors import UsageError
from runner.eval_hooks import EvalHooks, EvalHookSpec
from tests.cli_helpers import NADAMW, run_cli

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)


class Probe:
    """A hook that records how it was built and called and reports the step it saw."""

    built = []

    def __init__(self, workload, data_rng, data_dir):
        Probe.built.append((workload, data_dir))

    def __call__(self, workload, model_params, model_state, rng, global_step):
        return {"probe/step": global_step, "probe/params": model_params}


class Logger:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))


def test_hooks_run_after_every_nth_eval_and_log_what_they_return():
    Probe.built.clear()
    hooks = EvalHooks(
        [EvalHookSpec("tests.test_eval_hooks:Probe", every=2), EvalHookSpec("tests.test_eval_hooks:Probe")],
        workload="w",
        data_rng=None,
        data_dir="d",
    )
    assert Probe.built == [("w", "d"), ("w", "d")]  # built once each, at the start of the trial
    logger = Logger()
    for eval_index, step in enumerate([10, 20, 30, 40], start=1):
        hooks.after_eval("w", eval_index, None, None, step, logger)
    every_second = [(10, 1.0), (20, 2.0), (20, 2.0), (30, 3.0), (40, 4.0), (40, 4.0)]
    assert [(s, v) for t, v, s in logger.scalars if t == "probe/step"] == [(s, float(s)) for s, _ in every_second]
    assert [(s, v) for t, v, s in logger.scalars if t == "probe/params"] == every_second


@pytest.mark.parametrize(
    "text, target, every",
    [("a.b:C", "a.b:C", 1), ("a.b:C@3", "a.b:C", 3), ("diagnostics.kron_logging:KronQualityHook@1", None, 1)],
)
def test_spec_parsing(text, target, every):
    spec = EvalHookSpec.parse(text)
    assert spec.target == (target or text.split("@")[0]) and spec.every == every


@pytest.mark.parametrize(
    "text, message",
    [
        ("a.b", "is not of the form package.module:factory"),
        ("a.b:C@x", "'x' after @ must be a whole number"),
        ("a.b:C@0", "every=0 must be >= 1"),
    ],
)
def test_bad_spec_is_a_usage_error(text, message):
    with pytest.raises(UsageError, match=message):
        EvalHookSpec.parse(text)


def test_unloadable_hook_is_a_usage_error():
    with pytest.raises(UsageError, match="cannot be loaded"):
        EvalHookSpec("tests.test_eval_hooks:Nothing").resolve()
    with pytest.raises(UsageError, match="cannot be loaded"):
        EvalHookSpec("no_such_package.mod:Hook").resolve()


def test_runner_refuses_a_bad_hook_name_before_training(tmp_path):
    proc = run_cli(
        "--workload=mnist",
        f"--submission_path={NADAMW}",
        "--tuning_ruleset=self",
        f"--experiment_dir={tmp_path}",
        "--experiment_name=h",
        "--eval_hooks=no_such_package.mod:Hook@2",
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "eval hook 'no_such_package.mod:Hook' cannot be loaded" in proc.stderr
    assert not (tmp_path / "h").exists()  # nothing written
