"""The sweep runner: shards written atomically with their settings, resumed, refused on other
settings, redone when corrupt; the Ray engine writes the same files and survives kill -9."""

import json
import os

import numpy as np
import pytest

from keras_sd_interp.reports.shards import ShardStore, job_store
from keras_sd_interp.sweeps import prompt_shards, run_sweep, unit_shards
from keras_sd_interp.sweeps.jobs.probe import ProbeJob

SHARDS = unit_shards("probe", {"res_block_0.conv1": 20, "conv_out": 4}, 8)


def sweep(job, shards, run_dir, **kwargs):
    """run_sweep into the job's store in `run_dir` (as SweepFiles does per job)."""
    return run_sweep(job, shards, job_store(run_dir, job), **kwargs)


def shard_values(run_dir, job=ProbeJob()):
    store = ShardStore(run_dir, {"job": job.name, **job.settings()})
    return {shard.key: store.load(shard)["values"] for shard in SHARDS}


def test_shards_cover_each_site_and_prompt_range():
    assert [(s.site, s.start, s.stop) for s in SHARDS] == [
        ("res_block_0.conv1", 0, 8), ("res_block_0.conv1", 8, 16), ("res_block_0.conv1", 16, 20),
        ("conv_out", 0, 4)]
    assert SHARDS[1].key == "probe/res_block_0.conv1_00008-00016"
    assert [(s.start, s.stop) for s in prompt_shards("act", 10, 4)] == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ValueError, match="shard size 0"):
        unit_shards("probe", {"a": 3}, 0)


def test_rerun_skips_done_shards_and_redoes_broken_ones(tmp_path):
    run_dir = str(tmp_path)
    first = sweep(ProbeJob(), SHARDS, run_dir, progress=False)
    assert (len(first.written), first.units) == (4, 24)
    values = shard_values(run_dir)
    assert values[SHARDS[2].key].shape == (4,) and np.all(values[SHARDS[0].key] > 0)
    again = sweep(ProbeJob(), SHARDS, run_dir, progress=False)
    assert (again.written, len(again.skipped)) == ([], 4)
    store = ShardStore(run_dir, {"job": "probe", "work": 10})
    with open(store.path(SHARDS[0]), "r+b") as f:   # half-written: cut in the middle
        f.truncate(os.path.getsize(store.path(SHARDS[0])) // 2)
    with open(store.path(SHARDS[3]), "wb") as f:
        f.write(b"not a zip")
    redo = sweep(ProbeJob(), SHARDS, run_dir, progress=False)
    assert redo.written == [SHARDS[0], SHARDS[3]]
    for key, value in shard_values(run_dir).items():
        np.testing.assert_array_equal(value, values[key])
    assert [w["shard"] for w in store.writes()].count(SHARDS[1].key) == 1


def test_other_settings_refuse_naming_the_flag(tmp_path):
    sweep(ProbeJob(work=10), SHARDS[:1], str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="--work=11 differs"):
        sweep(ProbeJob(work=11), SHARDS, str(tmp_path), progress=False)
    other = tmp_path / "other"
    sweep(ProbeJob(work=11), SHARDS[:1], str(other), progress=False)
    os.replace(other / "shards" / (SHARDS[0].key + ".npz"),
               tmp_path / "shards" / (SHARDS[0].key + ".npz"))
    with pytest.raises(ValueError, match="written with --work=11"):
        sweep(ProbeJob(work=10), SHARDS, str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="--engine='spark'"):
        sweep(ProbeJob(), SHARDS, str(tmp_path), engine="spark")


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():   # left by an earlier run_sweep(engine="ray") in this process
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2,
             log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_writes_the_same_files_as_in_process(local_ray, tmp_path):
    sweep(ProbeJob(), SHARDS, str(tmp_path / "here"), progress=False)
    report = sweep(ProbeJob(), SHARDS, str(tmp_path / "ray"), engine="ray", workers=2,
                       progress=False)
    assert report.units == 24
    here, there = shard_values(str(tmp_path / "here")), shard_values(str(tmp_path / "ray"))
    for key in here:
        np.testing.assert_array_equal(here[key], there[key])


def test_ray_worker_killed_mid_shard_loses_and_doubles_nothing(local_ray, tmp_path):
    marker = str(tmp_path / "killed")
    run_dir = str(tmp_path / "run")
    shards = unit_shards("probe", {"a": 48}, 6)
    report = sweep(ProbeJob(work=50, die_marker=marker), shards, run_dir, engine="ray",
                       workers=2, progress=False)
    assert os.path.exists(marker)          # a worker did die with SIGKILL, half-way in a shard
    writes = [w["shard"] for w in ShardStore(run_dir, {"job": "probe", "work": 50}).writes()]
    assert sorted(writes) == sorted(s.key for s in shards)   # each shard once, none lost
    assert report.units == 48
    store = ShardStore(run_dir, {"job": "probe", "work": 50})
    values = np.concatenate([store.load(s)["values"] for s in shards])
    expected = ProbeJob(work=50).run(None, shards[0].__class__("probe", "a", 0, 48))["values"]
    np.testing.assert_array_equal(values, expected)
    assert json.load(open(os.path.join(run_dir, "settings.json"))) == {"job": "probe", "work": 50}


def test_actors_share_the_cpus_so_that_every_one_can_be_placed():
    from keras_sd_interp.sweeps.engines import actor_cpus

    assert [actor_cpus([2], w) for w in (1, 2, 3)] == [2, 1, 1]      # this machine
    assert actor_cpus([8, 8], 3) == 4          # two actors fit each node, three are placed
    assert actor_cpus([16, 4], 2) == 4         # every node holds its share: the small one too
    assert actor_cpus([0.5], 1) == 1
