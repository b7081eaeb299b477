"""The campaign manifest, ``<root>/manifest.json``: what the campaign is and where each trial stands.

The coordinator is its only writer (``<root>/.campaign.lock`` keeps a second one out) and rewrites it atomically
after every change. A trial's own ``trial_result.json`` is the commit point; the manifest mirrors it, and on
opening takes in results committed by attempts whose coordinator died before recording them. Statuses:
pending, running (an attempt was started; if the campaign died, it resumes from its checkpoint), done, failed
(retried by the next run).
"""

import json
import os
import time

from common import layout
from common.atomic import write_json
from common.errors import UsageError
from tuning.plan import TrialSpec
from tuning.trial import read_result

VERSION = 1
STATUSES = ("pending", "running", "done", "failed")


class Manifest:
    def __init__(self, path: str, data: dict):
        self.path, self.data = path, data

    @classmethod
    def open(cls, root: str, identity: dict, specs: list[TrialSpec]) -> "Manifest":
        """Create the manifest of a new campaign, or load an existing one after checking it is the same campaign."""
        path = os.path.join(root, layout.MANIFEST)
        data = load(root)
        if data is None:
            data = {"version": VERSION, "created": _now(), "identity": identity, "trials": {}}
        elif _more_studies(data.get("identity"), identity):
            data["identity"] = identity  # study k's plan depends only on k: the studies run so far stay as they are
        elif data.get("identity") != identity:
            raise UsageError(
                f"{root} holds a different campaign ({_difference(data.get('identity') or {}, identity)}); "
                f"repeat its flags to continue it or pick a new --experiment_name"
            )
        for spec in specs:
            config = spec.config
            planned = {"seed": config.rng_seed, "hyperparameters": spec.hyperparameters}
            entry = data["trials"].setdefault(spec.id, {"status": "pending", "attempts": 0, **planned})
            if entry["attempts"] and {k: entry.get(k) for k in planned} != planned:
                raise UsageError(
                    f"trial {spec.id} in {root} ran with {entry.get('hyperparameters')} (seed {entry.get('seed')}) "
                    f"but is now planned with {spec.hyperparameters} (seed {config.rng_seed}); restore the search "
                    f"space or pick a new --experiment_name"
                )
            entry.update(
                planned,
                submission=spec.submission,
                workload=config.workload_name,
                framework=config.framework,
                study=spec.study,
            )
            if entry["status"] != "done":
                committed = read_result(spec.trial_dir)
                if committed is not None:
                    entry.update(status="done", result=committed, recovered=True)
                    if committed.get("diverged_at_step") is not None:
                        entry["diverged_at_step"] = committed["diverged_at_step"]
        manifest = cls(path, data)
        manifest.save()
        return manifest

    def is_done(self, trial_id: str) -> bool:
        return self.data["trials"][trial_id]["status"] == "done"

    def count(self, status: str) -> int:
        return sum(t["status"] == status for t in self.data["trials"].values())

    def started(self, trial_id: str) -> None:
        entry = self.data["trials"][trial_id]
        entry.update(status="running", attempts=entry["attempts"] + 1, started=_now())
        entry.pop("error", None)
        self.save()

    def finished(self, trial_id: str, result: dict) -> None:
        """Done; a trial that diverged is done too (it cannot reach a target), marked ``diverged_at_step``."""
        entry = self.data["trials"][trial_id]
        entry.update(status="done", result=result, finished=_now())
        if result.get("diverged_at_step") is not None:
            entry["diverged_at_step"] = result["diverged_at_step"]
        self.save()

    def failed(self, trial_id: str, error: str) -> None:
        self.data["trials"][trial_id].update(status="failed", error=error, finished=_now())
        self.save()

    def save(self) -> None:
        self.data["updated"] = _now()
        write_json(self.path, self.data, indent=1)


def load(root: str) -> dict | None:
    path = os.path.join(root, layout.MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path} is not valid JSON ({e}); restore it or pick a new --experiment_name") from None
    except (RecursionError, ValueError):  # nested too deep, or an integer past Python's int-string limit
        raise UsageError(
            f"{path} is not a campaign manifest (unreadable JSON); restore it or pick a new name"
        ) from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("trials"), dict)
        or not isinstance(data.get("identity"), dict)
    ):
        raise UsageError(f"{path} is not a campaign manifest; restore it or pick a new --experiment_name")
    if data.get("version") != VERSION:
        raise UsageError(f"{path} has manifest version {data.get('version')}, expected {VERSION}; use a new name")
    for trial_id, entry in data["trials"].items():
        problem = _entry_problem(entry)
        if problem is not None:
            raise UsageError(
                f"{path}: trial {trial_id[:120]!r} {problem}; restore the file, remove the entry (the trial's own "
                f"folder stays the record of what ran) or pick a new --experiment_name"
            )
    return data


def _more_studies(old, new: dict) -> bool:
    """The same campaign with more studies (``make leaderboard`` continuing a 3-study campaign to 5)."""
    if not isinstance(old, dict) or not isinstance(old.get("num_studies"), int):
        return False
    same = {k: v for k, v in old.items() if k != "num_studies"} == {k: v for k, v in new.items() if k != "num_studies"}
    return same and new.get("num_studies", 0) > old["num_studies"]


def _entry_problem(entry) -> str | None:
    """What makes a manifest entry unusable (a hand edit), or None: a mapping with a known status and a count of
    attempts."""
    if not isinstance(entry, dict):
        return f"is a {type(entry).__name__}, not an object"
    if entry.get("status") not in STATUSES:
        return f"has status {entry.get('status')!r}, not one of {', '.join(STATUSES)}"
    attempts = entry.get("attempts")
    if type(attempts) is not int or attempts < 0:
        return f"has attempts={attempts!r}, not a count >= 0"
    return None


def _difference(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return "; ".join(f"{k} was {old.get(k)!r}, now {new.get(k)!r}" for k in keys)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")
