"""Sharded, resumable bulk jobs, run in-process or on Ray, into the same files.

    job = FilterVizJob(model="tiny", mode="corrected", direction="descent", steps=50)
    shards = unit_shards(job.name, job.units(), size=32)     # (site, unit range) pieces
    report = run_sweep(job, shards, "runs/atlas/filters")    # engine="ray", address="auto"

A job is any object with `name`, `settings()` (JSON-ready dict, names as flags), `build()` (the
models it needs, called once per worker) and `run(context, shard)` (a dict of NumPy arrays).
Each shard is one `.npz` file written atomically with the run's settings (`store.ShardStore`):
a rerun skips the shards that load, redoes missing, half-written or corrupt ones, and refuses
settings that differ, naming the flag. `engines` holds the in-process loop and the Ray actors.
"""

from keras_sd_interp.sweeps.runner import SweepReport, run_sweep
from keras_sd_interp.sweeps.shards import Shard, prompt_shards, unit_shards
from keras_sd_interp.sweeps.store import ShardStore

__all__ = ["Shard", "ShardStore", "SweepReport", "prompt_shards", "run_sweep", "unit_shards"]
