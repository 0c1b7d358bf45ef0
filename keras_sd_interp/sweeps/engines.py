"""The two engines: a loop in this process, and Ray actors (one model per worker).

Both are generators of (shard, arrays, seconds) in completion order; the runner writes.

Ray: each worker is an actor that calls `job.build()` once (one GPU each where the cluster has
GPUs); shards are actor tasks. A worker that dies (`kill -9`, a lost node) is restarted by Ray,
which rebuilds its model and retries the shard it held (`max_restarts`, `max_task_retries`), so no
shard is lost; only the driver writes, so none is written twice.

Priority: Ray starts its workers at `nice 15`, so on a machine with anything else running
they get a fraction of the CPU (the tiny filter job ran at 0.37x the in-process speed beside a
`nice 5` training job); a local cluster started here runs them at the driver's own niceness.
A cluster given by `address` keeps its own setting (`RAY_worker_niceness`).

CPUs: Ray sets a worker's OMP_NUM_THREADS to the CPUs its actor reserves, and TensorFlow's oneDNN
kernels then use that many threads; the driver's TensorFlow uses every core, so a local
cluster gets every core and each actor an equal share of its node's CPUs (`actor_cpus`).
"""

import collections
import math
import os
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


def connect(address=None, workers=1):
    """Joins the Ray cluster at `address`, or starts a local one (this machine's cores, workers
    at the driver's niceness); nothing when Ray is already initialised in this process."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address)
    else:  # a local cluster: this machine's cores; this toolkit's workers hold their own models
        ray.init(num_cpus=max(workers, os.cpu_count() or 1), include_dashboard=False,
                 object_store_memory=200 * 1024**2, log_to_driver=False,
                 _system_config={"worker_niceness": os.nice(0)})


def actor_cpus(node_cpus, workers):
    """CPUs each of `workers` actors reserves, given the CPUs of each live node: as many as
    lets every node hold its equal share of the actors (ceil(workers / nodes)), so all of them
    can be placed; at least 1. It is also the threads its TensorFlow kernels get (module doc).
    One node of 2 CPUs: 2 for one worker, 1 each for two."""
    per_node = math.ceil(workers / len(node_cpus))
    return max(1, int(min(node_cpus) // per_node))


def _node_cpus(ray):
    return [node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]] or [1]


def run_on_ray(job, shards, workers=1, address=None, max_retries=3):
    """Runs the shards on `workers` Ray actors; yields results as they finish."""
    if not shards:
        return
    import ray

    connect(address, workers)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= workers else 0
    actor_class = ray.remote(max_restarts=max_retries, max_task_retries=max_retries)(_Worker)
    actors = [actor_class.options(num_cpus=actor_cpus(_node_cpus(ray), workers), num_gpus=gpus)
              .remote(job)
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
