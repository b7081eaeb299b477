"""A submission from another project's ``submissions`` package runs in kronbench's runner.

MLCommons' submissions repository has a top-level ``submissions`` folder without ``__init__.py`` files, and its
entries import their helpers as ``submissions.self_tuning.<name>.<module>``. kronbench's own ``submissions`` is a
namespace package too, so the two merge instead of one shadowing the other, and the runner imports none of
kronbench's submission code into such a process.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.cli_helpers import ROOT

pytestmark = pytest.mark.integration  # starts processes (tests/conftest.py: the unit tier may not)

HELPER = """
import torch

LEARNING_RATE = 0.05


def sgd(params):
    return torch.optim.SGD(params, lr=LEARNING_RATE)
"""

SUBMISSION = """
import json
import os
import sys

from algoperf import spec
from submissions.self_tuning.foo.helper import sgd  # the foreign package's own helper, by its full name


def get_batch_size(workload_name):
    return 32


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    loaded = {
        name: getattr(module, "__file__", None)
        for name, module in sys.modules.items()
        if name == "submissions" or name.startswith("submissions.")
    }
    with open(os.environ["FOREIGN_RECORD"], "w") as f:
        json.dump(loaded, f)
    return {"optimizer": sgd(model_params.parameters())}


def update_params(workload, current_param_container, current_params_types, model_state, hyperparameters, batch,
                  loss_type, optimizer_state, eval_results, global_step, rng):
    optimizer = optimizer_state["optimizer"]
    optimizer.zero_grad()
    logits, model_state = workload.model_fn(
        current_param_container, batch, model_state, spec.ForwardPassMode.TRAIN, rng, update_batch_norm=True
    )
    loss = workload.loss_fn(batch["targets"], logits, batch.get("weights"))
    (loss["summed"] / loss["n_valid_examples"]).backward()
    optimizer.step()
    return optimizer_state, current_param_container, model_state


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state, hyperparameters,
                   global_step, rng):
    return next(input_queue)
"""


@pytest.mark.parametrize("with_init_files", [False, True], ids=["namespace", "regular"])
def test_foreign_submissions_package_wins_outside_the_checkout(tmp_path, with_init_files):
    repo = tmp_path / "submissions_algorithms"
    entry = repo / "submissions" / "self_tuning" / "foo"
    entry.mkdir(parents=True)
    (entry / "helper.py").write_text(HELPER)
    (entry / "submission.py").write_text(SUBMISSION)
    if with_init_files:  # a fork that made its folders regular packages
        for folder in (repo / "submissions", entry.parent, entry):
            (folder / "__init__.py").write_text("")
    record = tmp_path / "record.json"
    cwd = tmp_path / "elsewhere"  # outside the checkout: kronbench comes from the venv's (editable) install
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(repo), "FOREIGN_RECORD": str(record)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "--workload=mnist",
            f"--submission_path={entry / 'submission.py'}",
            "--tuning_ruleset=self",
            f"--experiment_dir={tmp_path / 'exp'}",
            "--experiment_name=foreign",
            "--max_global_steps=2",
            "--rng_seed=0",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(record.read_text())
    assert loaded["submissions.self_tuning.foo.helper"] == str(entry / "helper.py")
    kronbench_code = [f for f in loaded.values() if f and os.path.abspath(f).startswith(ROOT + os.sep)]
    assert not kronbench_code, f"kronbench's own submission code was imported: {kronbench_code}"
    with open(tmp_path / "exp" / "foreign" / "mnist_pytorch" / "trial_1" / "eval_measurements.csv") as f:
        rows = f.read().splitlines()
    assert len(rows) >= 2 and rows[-1].split(",")[0] == "2"  # the header, then evals up to step 2


def test_kronbench_submissions_still_import_by_package_name_beside_a_foreign_namespace(tmp_path):
    """With a foreign ``submissions`` namespace first on the path, kronbench's own entries still resolve."""
    foreign = tmp_path / "repo" / "submissions" / "self_tuning"
    foreign.mkdir(parents=True)
    code = (
        "import sys; from runner.loading import load_submission;"
        f"s = load_submission({os.path.join(ROOT, 'submissions', 'nadamw', 'submission.py')!r});"
        "import submissions; print(s.module.__name__, len(list(submissions.__path__)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "repo")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["submissions.nadamw.submission", "2"]  # both portions of the namespace
