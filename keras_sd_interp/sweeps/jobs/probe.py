"""A job with no model: fixed NumPy work per unit, for testing and timing the engines.

    job = ProbeJob(work=20, die_marker="/tmp/run/die")   # the first worker to reach the middle
    run_sweep(job, unit_shards("probe", {"a": 64}, 8), store, engine="ray")   # of a shard
                                                         # kills itself with SIGKILL once
"""

import dataclasses
import os
import signal
import time

import numpy as np


@dataclasses.dataclass(frozen=True)
class ProbeJob:
    """work: 64x64 matrix products per unit; die_marker: a path; when set and absent, the worker
    that reaches the middle of a shard creates it and sends itself SIGKILL (kill -9)."""

    work: int = 10
    die_marker: str = ""
    name: str = "probe"

    def settings(self):
        return {"work": self.work}

    def build(self):
        return {"pid": os.getpid(), "built": time.time()}

    def _unit_value(self, unit):
        matrix = np.random.default_rng(unit).normal(size=(64, 64)) / 8
        product = np.eye(64)
        for _ in range(self.work):
            product = product @ matrix
        return float(np.abs(product).sum())

    def run(self, context, shard):
        """Returns {"units": (n,) int, "values": (n,) float64}: deterministic per unit."""
        units = np.arange(shard.start, shard.stop)
        values = []
        for i, unit in enumerate(units):
            if self.die_marker and i == len(units) // 2 and not os.path.exists(self.die_marker):
                open(self.die_marker, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
            values.append(self._unit_value(int(unit)))
        return {"units": units, "values": np.array(values)}
