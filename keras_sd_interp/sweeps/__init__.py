"""Sharded, resumable bulk jobs, run in-process or on Ray, into the same files.

    job = FilterVizJob(model="tiny", mode="corrected", direction="descent", steps=50)
    shards = unit_shards(job.name, job.units(), size=32)     # (site, unit range) pieces
    store = reports.shards.SweepFiles("runs/atlas").store(job)   # the caller's files
    report = run_sweep(job, shards, store)                   # engine="ray", address="auto"

A job is any object with `name`, `settings()` (JSON-ready dict, names as flags), `build()` (the
models it needs, called once per worker) and `run(context, shard)` (a dict of NumPy arrays).
The runner hands each shard to a store its caller built (`reports.shards.ShardStore`: one
`.npz` file per shard, written atomically with the run's settings), so nothing here touches
files: a rerun skips the shards the store holds, redoes missing, half-written or corrupt ones,
and the store refuses settings that differ, naming the flag. `engines` holds the in-process
loop and the Ray actors.
"""

from keras_sd_interp.sweeps.runner import SweepReport, run_sweep
from keras_sd_interp.sweeps.shards import Shard, prompt_shards, unit_shards

__all__ = ["Shard", "SweepReport", "prompt_shards", "run_sweep", "unit_shards"]
