"""SAE activations streamed to shards: read back equal to what was recorded, a resumed collection
neither repeats nor skips, training on shards resumes exactly, NaN stops, bad files are named,
SAeUron's checkpoint format loads."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_sd_interp.sae import SparseAutoencoder, collect, load_sae
from keras_sd_interp.training.sae import (
    save_sae, save_saeuron, train_sae, train_sae_on_shards,
)
from keras_sd_interp.training import sae_shards
from keras_sd_interp.training.sae_shards import ShardPlan, collect_shards, read_shard

SITE = "spatial_transformer_8"
PROMPTS = ["a bag and a boot", "a coat", "a dress and a shirt", "a sneaker", "a sandal and a bag"]
PLAN = ShardPlan(SITE, num_steps=3, steps=(0, 2), positions=3, batch_size=2, seed=4)


@pytest.fixture(scope="module")
def tiny_pipe():
    from keras_sd_interp.models import load_pipeline

    return load_pipeline("tiny")


@pytest.fixture(scope="module")
def straight(tiny_pipe, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("straight"))
    return folder, collect_shards(tiny_pipe, PROMPTS, folder, PLAN, progress=False)


def test_shards_read_back_equal_what_was_recorded(tiny_pipe, straight):
    _, paths = straight
    data = collect(tiny_pipe, PROMPTS, SITE, num_steps=3, steps=[0, 2], seed=4, batch_size=2,
                   progress=False)
    acts = data["activations"]                                   # (S, N, h, w, C)
    width = acts.shape[3]
    assert len(paths) == 3
    for path in paths:
        shard = read_shard(path)
        slot = np.searchsorted([0, 2], shard["step"])
        row, col = np.divmod(shard["position"], width)
        np.testing.assert_array_equal(shard["tokens"], acts[slot, shard["prompt"], row, col])


def test_resumed_collection_neither_repeats_nor_skips(tiny_pipe, straight, tmp_path):
    folder, paths = straight
    resumed = str(tmp_path / "resumed")
    assert len(collect_shards(tiny_pipe, PROMPTS, resumed, PLAN, progress=False,
                              max_shards=1)) == 1                    # stopped after one shard
    assert len(collect_shards(tiny_pipe, PROMPTS, resumed, PLAN, progress=False)) == 3
    keys = []
    for a, b in zip(paths, sae_shards.shard_files(resumed)):
        first, second = read_shard(a), read_shard(b)
        for name in first:
            np.testing.assert_array_equal(first[name], second[name])
        keys += list(zip(second["prompt"], second["step"], second["position"]))
    assert len(keys) == len(set(keys)) == len(PROMPTS) * 2 * 3    # prompts x steps x positions
    assert {(p, s) for p, s, _ in keys} == {(p, s) for p in range(5) for s in (0, 2)}


def test_collection_refuses_other_settings_and_budget(tiny_pipe, straight):
    folder, _ = straight
    with pytest.raises(ValueError, match="--positions=4 differs"):
        collect_shards(tiny_pipe, PROMPTS, folder, ShardPlan(**{**PLAN.__dict__, "positions": 4}),
                       progress=False)
    with pytest.raises(ValueError, match="--max_gb=1e-06"):
        collect_shards(tiny_pipe, PROMPTS, folder + "_x", PLAN, max_bytes=1e3, progress=False)
    assert PLAN.estimate_bytes(5, (2, 4), 96) == 5 * 2 * 3 * (96 * 4 + 12)


def test_site_shape_from_config():
    from keras_sd_interp.models.config import SD14, TINY

    assert sae_shards.transformer_site_shape(SD14, 512, 512, SITE) == (16, 16, 1280)
    assert sae_shards.transformer_site_shape(TINY, 32, 64, SITE) == (2, 4, 96)
    assert sae_shards.transformer_site_shape(SD14, 512, 512, "spatial_transformer_0") == \
        (64, 64, 320)


def planted_shards(folder, num_shards=3, n=400, d=8, seed=0):
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((12, d))
    for b in range(num_shards):
        codes = rng.uniform(0, 2, (n, 12)) * (rng.random((n, 12)) < 0.2)
        tokens = (codes @ dirs).astype(np.float32)
        sae_shards.write_shard(sae_shards.shard_path(folder, b), {
            "tokens": tokens, "prompt": np.zeros(n, np.int32), "step": np.zeros(n, np.int32),
            "position": np.arange(n, dtype=np.int32)})
    return folder


def test_training_on_shards_resumes_exactly(tmp_path):
    shards = planted_shards(str(tmp_path / "acts"))
    args = dict(batch_size=64, learning_rate=3e-3, seed=1, log_every=5, shuffle_buffer=500,
                progress=False)
    straight = SparseAutoencoder(8, expansion=2, k=3, seed=0)
    full = train_sae_on_shards(straight, shards, steps=20, **args)
    resumed = SparseAutoencoder(8, expansion=2, k=3, seed=0)
    ck = str(tmp_path / "ck")
    train_sae_on_shards(resumed, shards, steps=10, checkpoint_dir=ck, checkpoint_every=10, **args)
    again = SparseAutoencoder(8, expansion=2, k=3, seed=7)        # other init: restore must win
    history = train_sae_on_shards(again, shards, steps=20, checkpoint_dir=ck, **args)
    np.testing.assert_allclose(again.W_enc.numpy(), straight.W_enc.numpy(), atol=1e-5)
    assert [row["step"] for row in history] == [5, 10, 15, 20]   # the log before the restart too
    np.testing.assert_allclose([r["fvu"] for r in history], [r["fvu"] for r in full], atol=1e-5)
    with pytest.raises(ValueError, match="steps=5 is below the checkpoint's step 20"):
        train_sae_on_shards(again, shards, steps=5, checkpoint_dir=ck, **args)


def test_nan_and_overflow_stop_naming_the_step(tmp_path):
    x = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    bad = x.copy()
    bad[7, 3] = np.nan
    with pytest.raises(FloatingPointError, match="step 0: the batch holds a non-finite"):
        train_sae(SparseAutoencoder(8, 2, 2), bad, steps=3, batch_size=32, progress=False)
    huge = x * 1e25                                                 # finite, squares overflow
    with pytest.raises(FloatingPointError, match="step 1: the loss is not finite"):
        train_sae(SparseAutoencoder(8, 2, 2), huge, steps=3, batch_size=32, progress=False)
    with pytest.raises(ValueError, match="learning_rate=nan"):
        train_sae(SparseAutoencoder(8, 2, 2), x, steps=3, learning_rate=float("nan"),
                  progress=False)
    sae = SparseAutoencoder(8, 2, 2)
    sae.b_dec.assign(np.full(8, np.nan, np.float32))
    with pytest.raises(FloatingPointError, match="b_dec hold NaN"):
        save_sae(str(tmp_path / "nan.npz"), sae)
    assert not (tmp_path / "nan.npz").exists()


@pytest.mark.parametrize("content, expected", [
    (b"", "is not a readable SAE"),
    (b"PK\x03\x04 truncated", "is not a readable SAE"),
])
def test_load_sae_names_a_bad_file(tmp_path, content, expected):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=expected) as info:
        load_sae(str(path))
    assert str(path) in str(info.value) and "W_enc" in str(info.value)


def test_load_sae_names_a_truncated_or_incomplete_file(tmp_path):
    sae = SparseAutoencoder(8, expansion=2, k=3, seed=1)
    good = tmp_path / "s.npz"
    save_sae(str(good), sae)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match="cut.npz.*not a readable SAE"):
        load_sae(str(cut))
    partial = tmp_path / "partial.npz"
    np.savez(partial, **{k: v for k, v in sae.get_weights().items() if k != "W_dec"},
             **sae.config())
    with pytest.raises(ValueError, match=r"missing arrays \['W_dec'\]"):
        load_sae(str(partial))
    with pytest.raises(ValueError, match="does not exist"):
        load_sae(str(tmp_path / "nope.npz"))


def test_saeuron_checkpoint_loads_into_our_sae(tmp_path):
    """A checkpoint written as SAeUron's Sae.save_to_disk does (torch Linear layout), from
    random numbers: encodes and decodes as their formulas say."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    d, m, k = 6, 24, 4
    tensors = {"encoder.weight": rng.standard_normal((m, d)).astype(np.float32),
               "encoder.bias": rng.standard_normal(m).astype(np.float32),
               "W_dec": rng.standard_normal((m, d)).astype(np.float32),
               "b_dec": rng.standard_normal(d).astype(np.float32)}
    folder = tmp_path / "unet.up_blocks.1.attentions.1"
    folder.mkdir()
    save_file(tensors, str(folder / "sae.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({
        "expansion_factor": 4, "normalize_decoder": True, "num_latents": 0, "k": k,
        "batch_topk": True, "sample_topk": False, "input_unit_norm": False,
        "multi_topk": False, "d_in": d}))
    sae = load_sae(str(folder))
    x = rng.standard_normal((5, d)).astype(np.float32)
    pre = np.maximum((x - tensors["b_dec"]) @ tensors["encoder.weight"].T
                     + tensors["encoder.bias"], 0)
    keep = np.argsort(-pre, axis=1)[:, :k]
    z = np.zeros_like(pre)
    np.put_along_axis(z, keep, np.take_along_axis(pre, keep, 1), 1)
    np.testing.assert_allclose(sae.encode(tf.constant(x)).numpy(), z, atol=1e-5)
    np.testing.assert_allclose(sae(tf.constant(x)).numpy(), z @ tensors["W_dec"]
                               + tensors["b_dec"], atol=1e-4)
    out = tmp_path / "ours"
    save_saeuron(str(out), sae)                                     # and back
    np.testing.assert_array_equal(load_sae(str(out)).W_enc.numpy(), sae.W_enc.numpy())
    (folder / "sae.safetensors").write_bytes((folder / "sae.safetensors").read_bytes()[:100])
    with pytest.raises(ValueError, match="sae.safetensors: expected a safetensors file"):
        load_sae(str(folder))
    os.remove(folder / "cfg.json")
    with pytest.raises(ValueError, match="cfg.json: expected SAeUron's cfg.json"):
        load_sae(str(folder))


def _runner_collection(run_dir, **engine):
    from keras_sd_interp.reports.shards import job_store
    from keras_sd_interp.sweeps import run_sweep
    from keras_sd_interp.sweeps.jobs.sae_collect import SaeCollectJob

    job = SaeCollectJob(prompts=tuple(PROMPTS), plan=PLAN)
    report = run_sweep(job, job.shards(), job_store(run_dir, job), progress=False, **engine)
    return job, report


def _assert_same_shards(paths, folder):
    runner_files = sae_shards.shard_files(folder)
    assert [os.path.basename(p) for p in runner_files] == [
        "prompts_00000-00002.npz", "prompts_00002-00004.npz", "prompts_00004-00005.npz"]
    for a, b in zip(paths, runner_files):
        first, second = read_shard(a), read_shard(b)
        assert set(first) == set(second)
        for name in first:
            np.testing.assert_array_equal(first[name], second[name])


@pytest.mark.long  # 35 s: the job builds its own pipeline; tests/test_sweeps.py checks the runner
def test_sweep_runner_collects_the_same_shards(straight, tmp_path):
    """The collection as a sweep job (prompt shards of batch_size): the same arrays as
    collect_shards, read back by shard_files / sample_tokens; a rerun skips every shard."""
    from keras_sd_interp.sweeps import Shard

    _, paths = straight
    job, report = _runner_collection(str(tmp_path))
    assert (len(report.written), report.units) == (3, 5)
    _assert_same_shards(paths, str(tmp_path))
    assert sae_shards.sample_tokens(str(tmp_path), 6).shape == (6, 96)
    assert len(_runner_collection(str(tmp_path))[1].skipped) == 3
    with pytest.raises(ValueError, match="batch_size=2"):
        job.run({"pipe": None}, Shard(job.name, "", 1, 3))


@pytest.mark.slow
def test_sweep_collection_on_ray_writes_the_same_shards(straight, tmp_path):
    pytest.importorskip("ray")
    _, paths = straight
    _, report = _runner_collection(str(tmp_path), engine="ray", workers=1)
    assert report.units == 5
    _assert_same_shards(paths, str(tmp_path))
