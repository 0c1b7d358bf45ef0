"""The sweeps' files: one `.npz` file per shard, written atomically with the run's settings.

    files = SweepFiles("runs/atlas")           # one folder per job: runs/atlas/<job name>/
    store = files.store(job)                   # refuses a folder started with other settings
    report = sweeps.run_sweep(job, shards, store)
    store = job_store(folder, job)             # a job's store in a folder of its own
    store = ShardStore(folder, settings)       # the same, for any settings dict
    store.done(shard)                          # the file loads and carries these settings
    store.write(shard, {"images": ..., ...}, seconds=12.5)
    arrays = store.load(shard)

A shard whose file is missing, truncated or not a zip counts as not done and is redone; a shard
file that loads but records other settings refuses, naming the flag (it cannot come from this
run). Each write appends one line to `writes.jsonl` (shard key, units, seconds, pid), which is
how tests see that no shard is written twice and how benchmarks read units/s.

The runner (`sweeps.run_sweep`) computes shards and hands them to a store built by its caller,
so that sweeps/ itself never touches files (tests/test_layout.py): data flows model -> sweep
job -> runner -> this writer -> files.
"""

import json
import os
import zipfile

import numpy as np

from keras_sd_interp import io
from keras_sd_interp.sweeps.runner import differing_setting, store_settings
from keras_sd_interp.training.run_settings import check_run_settings, json_settings

SETTINGS_KEY = "__settings__"
WRITES_LOG = "writes.jsonl"


class ShardStore:
    """The shard files of one run folder.

    Args:
        run_dir: the folder (made if missing); its `settings.json` is checked or written.
        settings: JSON-ready dict, names as the script's flags.
    Raises:
        ValueError naming the first flag that differs from the recorded run.
    """

    def __init__(self, run_dir, settings):
        self.run_dir = run_dir
        self.settings = json_settings(settings)
        check_run_settings(run_dir, self.settings)

    def path(self, shard):
        return os.path.join(self.run_dir, "shards", shard.key + ".npz")

    def load(self, shard):
        """The shard's arrays (dict name -> array), or None when the file is missing or broken."""
        path = self.path(shard)
        if not os.path.isfile(path):
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
            return None
        if SETTINGS_KEY not in arrays:
            return None
        recorded = json.loads(str(arrays.pop(SETTINGS_KEY)))
        name = differing_setting(recorded, self.settings)
        if name is not None:
            raise ValueError(
                f"shard file {path!r} was written with --{name}={recorded.get(name)!r}, this run "
                f"has --{name}={self.settings.get(name)!r}: rerun with the same flags or give a "
                "new --run_dir")
        return arrays

    def done(self, shard):
        return self.load(shard) is not None

    def write(self, shard, arrays, seconds=0.0):
        """Writes the shard's arrays (dict name -> array) with the settings, atomically."""
        arrays = {name: np.asarray(value) for name, value in arrays.items()}
        if SETTINGS_KEY in arrays:
            raise ValueError(f"{SETTINGS_KEY!r} is reserved for the settings")
        pickled = [name for name, value in arrays.items() if value.dtype.hasobject]
        if pickled:  # np.savez would pickle them; the load (no pickle) would redo the shard
            raise ValueError(f"shard {shard.key}: arrays {pickled} hold Python objects; give "
                             "numeric, bool or string arrays (a shard is read back without "
                             "pickle)")
        with io.atomic_path(self.path(shard)) as tmp:
            np.savez(tmp, **arrays, **{SETTINGS_KEY: np.array(json.dumps(self.settings))})
        line = json.dumps({"shard": shard.key, "units": shard.size, "seconds": seconds,
                           "pid": os.getpid()})
        with open(os.path.join(self.run_dir, WRITES_LOG), "a") as log:
            log.write(line + "\n")

    def writes(self):
        """Every logged write: list of dicts (shard, units, seconds, pid)."""
        path = os.path.join(self.run_dir, WRITES_LOG)
        if not os.path.isfile(path):
            return []
        with open(path) as log:
            return [json.loads(line) for line in log if line.strip()]


def job_store(folder, job):
    """The ShardStore of `job` (anything with `name` and `settings()`) in `folder`, holding
    `sweeps.runner.store_settings(job)`. Raises ValueError when the job's settings hold "job"
    or differ from what the folder recorded (naming the flag)."""
    return ShardStore(folder, store_settings(job))


class SweepFiles:
    """The run folder of a set of sweeps, one ShardStore per job in `run_dir/<job.name>`.

    Args:
        run_dir: the folder holding every job's folder (made when a store is first asked for).
    """

    def __init__(self, run_dir):
        self.run_dir = run_dir

    def job_dir(self, job):
        return os.path.join(self.run_dir, job.name)

    def store(self, job):
        """`job_store` of the job's folder."""
        return job_store(self.job_dir(job), job)
