"""`run_sweep`: the shards a run folder lacks, computed by an engine and written by the store.

    report = run_sweep(job, shards, run_dir)                          # in-process
    report = run_sweep(job, shards, run_dir, engine="ray", workers=2)  # Ray actors, local
    report = run_sweep(job, shards, run_dir, engine="ray", address="ray://head:10001")

The driver alone writes files, so both engines leave the same files and a retried shard is
written once. A progress bar runs over shards with units/s.
"""

import dataclasses
import time

from tqdm.auto import tqdm

from keras_sd_interp.sweeps import engines
from keras_sd_interp.sweeps.store import ShardStore

ENGINES = ("inprocess", "ray")


@dataclasses.dataclass
class SweepReport:
    """What a run did: shards written now and skipped (already done), units written, seconds
    of wall time (including building models), and units/s over that wall time."""

    written: list
    skipped: list
    units: int
    seconds: float

    @property
    def units_per_second(self):
        return self.units / self.seconds if self.seconds else 0.0


def check_engine(engine, workers):
    """Raises ValueError for an unknown engine or a worker count < 1 (before any model is built)."""
    if engine not in ENGINES:
        raise ValueError(f"--engine={engine!r} is not one of {ENGINES}")
    if workers < 1:
        raise ValueError(f"--workers={workers} must be >= 1")


def run_sweep(job, shards, run_dir, engine="inprocess", workers=1, address=None,
              max_retries=3, progress=True):
    """Computes and writes every shard of `shards` that `run_dir` does not hold yet.

    Args:
        job: see the package doc (name, settings(), build(), run(context, shard)).
        shards: list of Shard.
        run_dir: the run's folder; its settings.json must match `job.settings()`.
        engine: "inprocess" or "ray"; workers: Ray actors (each builds the model once);
        address: a Ray cluster (None: a local one); max_retries: Ray retries per shard.
    Returns:
        SweepReport.
    """
    check_engine(engine, workers)
    began = time.perf_counter()
    store = ShardStore(run_dir, {"job": job.name, **job.settings()})
    todo = [shard for shard in shards if not store.done(shard)]
    skipped = [shard for shard in shards if shard not in todo]
    bar = tqdm(total=len(todo), desc=f"{job.name} shards", unit="shard", disable=not progress)
    units = 0
    if engine == "inprocess":
        results = engines.run_in_process(job, todo)
    else:
        results = engines.run_on_ray(job, todo, workers, address, max_retries)
    for shard, arrays, seconds in results:
        store.write(shard, arrays, seconds)
        units += shard.size
        bar.update(1)
        bar.set_postfix(units_per_s=f"{units / (time.perf_counter() - began):.2f}")
    bar.close()
    return SweepReport(todo, skipped, units, time.perf_counter() - began)
