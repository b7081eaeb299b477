"""Loading a submission by path (runner/loading.py): what it leaves behind in the process."""

import sys

import pytest

from common.errors import UsageError
from runner.loading import load_submission

API = """
def get_batch_size(workload_name):
    return 8


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {}


def update_params(*args, **kwargs):
    return None


def data_selection(*args, **kwargs):
    return None
"""


def test_a_submission_imports_its_siblings_and_its_folder_leaves_the_path(tmp_path):
    """A submission outside any package imports the module beside it (kronbench's loader allows it; AlgoPerf's,
    which imports by dotted name from the repository root, does not), and afterwards no import elsewhere in the
    process resolves to a file of that folder: a module there named like one not yet imported (here a stand-in
    for a ``csv.py`` beside a submission) does not shadow it."""
    folder = tmp_path / "flat_submission"
    folder.mkdir()
    (folder / "kronbench_sibling_helper.py").write_text("BATCH = 24\n")
    (folder / "kronbench_not_a_sibling.py").write_text("SHADOWED = True\n")
    (folder / "submission.py").write_text(
        "import kronbench_sibling_helper\n" + API + "\n\ndef get_eval_batch_size(name):\n"
        "    return kronbench_sibling_helper.BATCH\n"
    )
    before = list(sys.path)
    submission = load_submission(str(folder / "submission.py"))
    assert submission.eval_batch_size("mnist", default=1) == 24  # the sibling's value, through the submission
    assert sys.path == before and str(folder) not in sys.path
    sys.modules.pop("kronbench_sibling_helper")  # loaded from the folder while the submission imported
    with pytest.raises(ImportError):
        import kronbench_not_a_sibling  # noqa: F401


def test_a_submission_that_fails_to_import_leaves_the_path_as_it_was(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "submission.py").write_text("import kronbench_missing_module_xyz\n" + API)
    before = list(sys.path)
    with pytest.raises(UsageError, match="failed to import: No module named 'kronbench_missing_module_xyz'"):
        load_submission(str(folder / "submission.py"))
    assert sys.path == before
