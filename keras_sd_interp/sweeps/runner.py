"""`run_sweep`: the shards a store lacks, computed by an engine and handed to the store.

    store = reports.shards.SweepFiles("runs/atlas").store(job)       # built by the caller
    report = run_sweep(job, shards, store)                            # in-process
    report = run_sweep(job, shards, store, engine="ray", workers=2)   # Ray actors, local
    report = run_sweep(job, shards, store, engine="ray", address="ray://head:10001")

The driver alone hands results to the store, so both engines leave the same files and a
retried shard is written once. A progress bar runs over shards with units/s. The store is any
object with `settings` (dict), `done(shard)` and `write(shard, arrays, seconds)`; this module
never touches files itself.
"""

import dataclasses
import json
import time

from tqdm.auto import tqdm

from keras_sd_interp.sweeps import engines

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


def check_engine(engine, workers, address=None):
    """Raises ValueError for an unknown engine, a worker count that is not an integer >= 1, or
    Ray's settings (workers > 1, an address) given to the in-process engine, which would ignore
    them (before any model is built)."""
    if engine not in ENGINES:
        raise ValueError(f"--engine={engine!r} is not one of {ENGINES}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers={workers!r} must be an integer >= 1")
    if engine == "inprocess" and (workers != 1 or address):
        raise ValueError(f"--workers={workers}, --address={address!r} are Ray's: the in-process "
                         "engine runs one model here; give --engine=ray or leave them unset")


def check_shards(job, shards):
    """Raises ValueError for a shard of another job or one listed twice (it would be computed
    and written twice), naming it."""
    keys = set()
    for shard in shards:
        if shard.job != job.name:
            raise ValueError(f"shard {shard.key} belongs to job {shard.job!r}, not to "
                             f"{job.name!r}: cut the shards with the job's name")
        if shard.key in keys:
            raise ValueError(f"shard {shard.key} is listed twice: give each shard once")
        keys.add(shard.key)


def differing_setting(recorded, settings):
    """The first name (sorted) whose value differs between two settings dicts, or None."""
    for name in sorted(set(recorded) | set(settings)):
        if recorded.get(name) != settings.get(name):
            return name
    return None


def store_settings(job):
    """What a store of `job` records: {"job": job.name, **job.settings()} as it reads back from
    JSON (NumPy scalars as Python values). Raises ValueError when the job's settings hold
    "job", the store's own name for the job."""
    settings = job.settings()
    if "job" in settings:
        raise ValueError(f"{job.name}.settings() holds 'job' ({settings['job']!r}): that name is "
                         "the store's (the job's name); rename the setting")
    return json.loads(json.dumps({"job": job.name, **settings}, default=_numpy_scalar))


def _numpy_scalar(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"setting value {value!r} is a {type(value).__name__}: settings are JSON "
                    "values (numbers, strings, booleans, lists, dicts)")


def check_store(job, store):
    """Raises ValueError when `store` records other settings than `job`'s (it was built for
    another job, or for other settings), naming the first that differs."""
    expected = store_settings(job)
    name = differing_setting(store.settings, expected)
    if name is not None:
        raise ValueError(f"the store records --{name}={store.settings.get(name)!r}, job "
                         f"{job.name!r} has --{name}={expected.get(name)!r}: give run_sweep "
                         "the job's own store (SweepFiles(run_dir).store(job))")


def run_sweep(job, shards, store, engine="inprocess", workers=1, address=None,
              max_retries=3, progress=True):
    """Computes every shard of `shards` that `store` does not hold yet and hands it to `store`.

    Args:
        job: see the package doc (name, settings(), build(), run(context, shard)).
        shards: list of Shard.
        store: where the shards go (`reports.shards.SweepFiles(run_dir).store(job)`); its
            settings must be the job's.
        engine: "inprocess" or "ray"; workers: Ray actors (each builds the model once);
        address: a Ray cluster (None: a local one); max_retries: Ray retries per shard.
    Returns:
        SweepReport.
    """
    check_engine(engine, workers, address)
    check_shards(job, shards)
    check_store(job, store)
    began = time.perf_counter()
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
