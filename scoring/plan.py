"""What the campaign being scored asked for, read from its ``manifest.json`` (written by ``python -m tuning``), so
the scorer can tell a campaign smaller by design (the demo: 1 study x 1 trial) from one missing trials.

Read as plain JSON and only from the submission directory itself: a manifest that is absent, a link, unreadable
or not a campaign's leaves the scorer with AlgoPerf's expectations alone.
"""

import json
import os
from dataclasses import dataclass

from common import layout

ALGOPERF_STUDIES = 3  # what AlgoPerf scores a submission over (its median over studies)
ALGOPERF_TRIALS = {"external": 5, "self": 1}  # trials per study under each tuning ruleset


@dataclass(frozen=True)
class CampaignPlan:
    num_studies: int
    num_tuning_trials: int
    tuning_ruleset: str

    def smaller_than_algoperf(self) -> bool:
        trials = ALGOPERF_TRIALS.get(self.tuning_ruleset, self.num_tuning_trials)
        return self.num_studies < ALGOPERF_STUDIES or self.num_tuning_trials < trials

    def note(self) -> str:
        """The one line that states a smaller campaign's design (the terminal and report.md print it once)."""
        trials = ALGOPERF_TRIALS.get(self.tuning_ruleset, self.num_tuning_trials)
        return (
            f"a demonstration: {self.num_studies} {_plural(self.num_studies, 'study', 'studies')} x "
            f"{self.num_tuning_trials} {_plural(self.num_tuning_trials, 'trial', 'trials')} per submission and "
            f"workload, as the campaign planned (AlgoPerf scores {ALGOPERF_STUDIES} studies x {trials} "
            f"{_plural(trials, 'trial', 'trials')}); the leaderboard is `make leaderboard`"
        )


def read_plan(source: str) -> CampaignPlan | None:
    """The plan in ``<source>/manifest.json``, or None when there is no readable campaign manifest."""
    path = os.path.join(source, layout.MANIFEST)
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            identity = json.load(f).get("identity")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(identity, dict):
        return None
    studies, trials, ruleset = (identity.get(k) for k in ("num_studies", "num_tuning_trials", "tuning_ruleset"))
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in (studies, trials)):
        return None
    if ruleset not in ALGOPERF_TRIALS:
        return None
    return CampaignPlan(studies, trials, ruleset)


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many
