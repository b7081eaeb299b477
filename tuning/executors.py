"""Executors run trials and report each one's end; the campaign decides what to run and records what ended.

- ``LocalExecutor``: each trial is a ``python -m tuning.worker`` subprocess, at most ``workers`` at once, each
  pinned to its own ``threads`` cores when the machine has enough of them (oversubscription is allowed but warned
  about: parallel trials then slow each other, and time to target measures the contention).
- ``RayExecutor``: each trial is a Ray task asking for ``cpus``/``gpus`` on an existing cluster (``address``) or on
  a local one started for the campaign. Every node must have kronbench installed at the same path and see the
  experiment directory (shared storage), since trials write their logs and checkpoints there.
"""

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from common.errors import UsageError
from common.threads import configure_thread_env
from tuning.plan import REPO_ROOT, TrialSpec

log = logging.getLogger("kronbench.tuning")

# The thread counts a trial is given (its share of the cores); common.threads.QUIET_THREAD_ENV is the other concept:
# the settings every subprocess gets so idle BLAS threads do not spin.
THREAD_COUNT_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
POLL_SEC = 0.2
ATTEMPT_MARK = "=== attempt started"


@dataclass(frozen=True)
class Outcome:
    spec: TrialSpec
    result: dict | None  # the committed result; None when the attempt failed
    error: str | None = None


def cpu_sets(workers: int, threads: int, num_cpus: int) -> list[list[int]] | None:
    """Disjoint cores per worker slot, or None when they do not fit (then nothing is pinned)."""
    if workers * threads > num_cpus:
        return None
    return [list(range(w * threads, (w + 1) * threads)) for w in range(workers)]


class LocalExecutor:
    def __init__(self, workers: int, threads: int | None, log_dir: str, procs_per_trial: int = 1):
        """``threads`` per worker; None shares the cores this process may use evenly between the workers. With
        ``procs_per_trial`` > 1 each trial is that many torchrun processes sharing the worker's threads."""
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = threads or max(1, cpus // workers)
        self.workers, self.threads, self.log_dir = workers, threads, log_dir
        self.procs_per_trial = procs_per_trial
        self.cpu_sets = cpu_sets(workers, threads, cpus)
        if self.cpu_sets is None:
            log.warning(
                "%d workers x %d threads oversubscribe %d cores: trials will slow each other down",
                workers,
                threads,
                cpus,
            )

    def run(self, specs: Iterable[TrialSpec], on_start: Callable[[TrialSpec], None]) -> Iterator[Outcome]:
        pending = list(specs)[::-1]
        running: dict[int, tuple[subprocess.Popen, TrialSpec, str]] = {}
        try:
            while pending or running:
                for slot in range(self.workers):
                    if slot not in running and pending:
                        spec = pending.pop()
                        on_start(spec)
                        running[slot] = self._start(spec, slot)
                finished = [slot for slot, (proc, _, _) in running.items() if proc.poll() is not None]
                if not finished:
                    time.sleep(POLL_SEC)
                for slot in finished:
                    proc, spec, log_path = running.pop(slot)
                    yield self._outcome(proc.returncode, spec, log_path)
        finally:  # an exception or a closed generator stops the trials still running
            for proc, _, _ in running.values():
                proc.kill()
                proc.wait()

    def _start(self, spec: TrialSpec, slot: int) -> tuple[subprocess.Popen, TrialSpec, str]:
        env = dict(os.environ, KRONBENCH_PARENT_PID=str(os.getpid()), **procs_env(self.procs_per_trial))
        env.update({name: str(max(1, self.threads // self.procs_per_trial)) for name in THREAD_COUNT_ENV})
        if self.cpu_sets is not None:
            env["KRONBENCH_CPUS"] = ",".join(map(str, self.cpu_sets[slot]))
        log_path = _log_path(self.log_dir, spec)
        with open(log_path, "ab") as out:
            out.write(f"{ATTEMPT_MARK} {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                [sys.executable, "-m", "tuning.worker"],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc.stdin.write(json.dumps(spec.to_dict()).encode())
        proc.stdin.close()
        return proc, spec, log_path

    @staticmethod
    def _outcome(returncode: int, spec: TrialSpec, log_path: str) -> Outcome:
        from tuning.trial import read_result

        result = read_result(spec.trial_dir) if returncode == 0 else None
        if result is not None:
            return Outcome(spec, result)
        return Outcome(spec, None, f"{_last_error_line(log_path)} (exit {returncode}; log {log_path})")


def procs_env(procs_per_trial: int) -> dict[str, str]:
    """What makes tuning.worker launch its trial under torchrun (tuning/worker.py)."""
    return {"KRONBENCH_PROCS_PER_TRIAL": str(procs_per_trial)} if procs_per_trial > 1 else {}


class RayExecutor:
    def __init__(
        self, address: str | None, cpus: float, gpus: float, max_in_flight: int, log_dir: str, procs_per_trial: int = 1
    ):
        """``cpus``/``gpus`` per process: a trial of ``procs_per_trial`` processes asks for that many times them."""
        self.address, self.cpus, self.gpus = address, cpus * procs_per_trial, gpus * procs_per_trial
        self.max_in_flight, self.log_dir, self.procs_per_trial = max_in_flight, log_dir, procs_per_trial

    def run(self, specs: Iterable[TrialSpec], on_start: Callable[[TrialSpec], None]) -> Iterator[Outcome]:
        import ray

        env = configure_thread_env({})
        try:
            ray.init(
                address=self.address or "local",  # "local": a new cluster, never one a `ray start` left behind
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                runtime_env={"env_vars": env},
            )
        except ConnectionError as e:
            raise UsageError(f"cannot reach the Ray cluster at {self.address} ({e}); check --ray_address") from None
        pending, in_flight = list(specs)[::-1], {}
        try:
            _check_resources(ray.cluster_resources(), self.cpus, self.gpus, self.address)
            # max_calls=1: a fresh worker process per trial, isolated as the local executor's trials are
            task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0, max_calls=1)(_ray_trial)
            while pending or in_flight:
                while pending and len(in_flight) < self.max_in_flight:
                    spec = pending.pop()
                    on_start(spec)
                    threads = max(1, int(self.cpus) // self.procs_per_trial)
                    in_flight[task.remote(spec.to_dict(), threads, self.procs_per_trial)] = spec
                done, _ = ray.wait(list(in_flight), num_returns=1)
                spec = in_flight.pop(done[0])
                try:
                    result, error = ray.get(done[0])
                except ray.exceptions.RayError as e:  # the worker died or the task raised
                    result, error = None, f"{type(e).__name__}: {str(e).strip().splitlines()[-1]}"
                if result is None:
                    with open(_log_path(self.log_dir, spec), "a") as f:
                        f.write(f"=== attempt failed {time.strftime('%Y-%m-%d %H:%M:%S')}: {error}\n")
                yield Outcome(spec, result, error)
        finally:
            for ref in in_flight:
                ray.cancel(ref, force=True)
            ray.shutdown()


def _check_resources(resources: dict, cpus: float, gpus: float, address: str | None) -> None:
    """Ray waits forever for a task no node can hold; say so up front instead."""
    where = f"the Ray cluster at {address}" if address else "the local Ray cluster"
    for name, need, flag in (("CPU", cpus, "cpus_per_trial"), ("GPU", gpus, "gpus_per_trial")):
        have = resources.get(name, 0.0)
        if need > have:
            raise UsageError(f"{where} has {have:g} {name}s but --{flag}={need:g}; lower it or add nodes")


def _ray_trial(spec_dict: dict, threads: int, procs_per_trial: int = 1) -> tuple[dict | None, str | None]:
    """Runs inside a Ray worker; user errors come back as one line, anything else as the task's exception. A
    trial of several processes runs as a tuning.worker subprocess launching torchrun on this node."""
    if procs_per_trial > 1:
        return _ray_torchrun_trial(spec_dict, threads, procs_per_trial)
    import torch

    import compat  # noqa: F401
    from tuning.trial import attempt

    torch.set_num_threads(threads)
    return attempt(TrialSpec.from_dict(spec_dict))


def _ray_torchrun_trial(spec_dict: dict, threads: int, procs: int) -> tuple[dict | None, str | None]:
    from tuning.trial import read_result

    env = dict(os.environ, KRONBENCH_PARENT_PID=str(os.getpid()), **procs_env(procs))
    env.update({name: str(threads) for name in THREAD_COUNT_ENV})
    proc = subprocess.run(
        [sys.executable, "-m", "tuning.worker"],
        cwd=REPO_ROOT,
        env=env,
        input=json.dumps(spec_dict),
        capture_output=True,
        text=True,
    )
    result = read_result(TrialSpec.from_dict(spec_dict).trial_dir) if proc.returncode == 0 else None
    if result is not None:
        return result, None
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    return None, (errors or lines or [f"torchrun exited with {proc.returncode}"])[-1]


def _log_path(log_dir: str, spec: TrialSpec) -> str:
    os.makedirs(log_dir, exist_ok=True)
    return os.path.join(log_dir, spec.id.replace("/", "__") + ".log")


def _last_error_line(log_path: str) -> str:
    """The last attempt's ``error: ...`` line, else the last line it printed (a traceback's last line)."""
    try:
        with open(log_path, errors="replace") as f:
            text = f.read()
    except OSError:
        return "the worker left no log"
    last_attempt = text.rsplit(ATTEMPT_MARK, 1)[-1].split("\n", 1)[-1]
    lines = [line.strip() for line in last_attempt.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else (lines[-1] if lines else "the worker printed nothing")
