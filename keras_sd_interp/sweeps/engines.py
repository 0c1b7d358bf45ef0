"""The two engines: a loop in this process, and Ray actors (one model per worker).

Both are generators of (shard, arrays, seconds) in completion order; the runner writes.

Ray: each worker is an actor that calls `job.build()` once (one GPU each where the cluster has
GPUs); shards are actor tasks. A worker that dies (`kill -9`, a lost node) is restarted by Ray,
which rebuilds its model and retries the shard it held (`max_restarts`, `max_task_retries`), so no
shard is lost; only the driver writes, so none is written twice.
"""

import collections
import time


def run_in_process(job, shards):
    """Builds the job's models once here and runs the shards in order."""
    if not shards:
        return
    context = job.build()
    for shard in shards:
        began = time.perf_counter()
        arrays = job.run(context, shard)
        yield shard, arrays, time.perf_counter() - began


class _Worker:
    """A Ray actor: the job's models, built once, and its shards run one at a time."""

    def __init__(self, job):
        self.job = job
        self.context = job.build()

    def run(self, shard):
        began = time.perf_counter()
        arrays = self.job.run(self.context, shard)
        return arrays, time.perf_counter() - began


def _connect(address, workers):
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address)
    else:  # a local cluster, small: this toolkit's workers hold their own models
        ray.init(num_cpus=workers, include_dashboard=False,
                 object_store_memory=200 * 1024**2, log_to_driver=False)


def run_on_ray(job, shards, workers=1, address=None, max_retries=3):
    """Runs the shards on `workers` Ray actors; yields results as they finish."""
    if not shards:
        return
    import ray

    _connect(address, workers)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= workers else 0
    actor_class = ray.remote(max_restarts=max_retries, max_task_retries=max_retries)(_Worker)
    actors = [actor_class.options(num_cpus=1, num_gpus=gpus).remote(job)
              for _ in range(workers)]
    queue = collections.deque(shards)
    running = {}
    try:
        for actor in actors:  # one shard in flight per actor keeps the model's memory bounded
            if queue:
                shard = queue.popleft()
                running[actor.run.remote(shard)] = (actor, shard)
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            actor, shard = running.pop(done[0])
            arrays, seconds = ray.get(done[0])
            if queue:
                next_shard = queue.popleft()
                running[actor.run.remote(next_shard)] = (actor, next_shard)
            yield shard, arrays, seconds
    finally:
        for actor in actors:
            ray.kill(actor)
