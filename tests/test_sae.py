"""The top-k SAE: top-k, unit decoder rows, planted features, geometric median, edits, resume."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from keras_sd_interp.sae import SparseAutoencoder, batch_topk, geometric_median, load_sae, topk
from keras_sd_interp.sae import features
from keras_sd_interp.training.sae import evaluate_sae, save_sae, train_sae


def planted(n=6000, d=16, num_features=24, active=2, seed=0):
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((num_features, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    codes = np.zeros((n, num_features))
    for i in range(n):
        codes[i, rng.choice(num_features, active, replace=False)] = rng.uniform(1, 3, active)
    return (codes @ dirs + 0.3).astype(np.float32), dirs


def test_topk_keeps_exactly_k():
    pre = tf.constant(np.random.default_rng(0).standard_normal((5, 40)).astype(np.float32) + 3)
    z = topk(pre, 7).numpy()
    assert (np.count_nonzero(z, axis=1) == 7).all()
    kept = np.sort(pre.numpy(), axis=1)[:, -7:]
    np.testing.assert_allclose(np.sort(z, axis=1)[:, -7:], kept)


def test_batch_topk_keeps_k_times_batch():
    pre = tf.constant(np.random.default_rng(1).standard_normal((6, 30)).astype(np.float32) + 3)
    z = batch_topk(pre, 4).numpy()
    assert np.count_nonzero(z) == 24
    assert z.max() == pre.numpy().max()


def test_geometric_median_matches_brute_force():
    points = np.array([[0, 0], [4, 0], [0, 3], [5, 5], [1, 1]], np.float64)
    median = geometric_median(points, iterations=500)
    grid = np.stack(np.meshgrid(np.linspace(0, 5, 501), np.linspace(0, 5, 501)), -1).reshape(-1, 2)
    cost = np.linalg.norm(grid[:, None] - points[None], axis=-1).sum(1)
    np.testing.assert_allclose(median, grid[cost.argmin()], atol=0.011)


def test_planted_features_recovered_and_decoder_unit_norm():
    x, dirs = planted()
    sae = SparseAutoencoder(16, expansion=4, k=2, seed=0)
    history = train_sae(sae, x, steps=700, batch_size=256, learning_rate=3e-3, log_every=350,
                        progress=False)
    norms = np.linalg.norm(sae.W_dec.numpy(), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    best = (dirs @ sae.W_dec.numpy().T).max(axis=1)
    assert best.min() > 0.9, best
    metrics = evaluate_sae(sae, x)
    assert metrics["l0"] <= 2.0 and metrics["fvu"] < 0.2
    assert history[-1]["l0"] == pytest.approx(2.0)


def test_resume_continues_where_it_stopped(tmp_path):
    x, _ = planted(n=2000)
    straight = SparseAutoencoder(16, expansion=2, k=2, seed=0)
    train_sae(straight, x, steps=20, batch_size=64, progress=False)
    resumed = SparseAutoencoder(16, expansion=2, k=2, seed=0)
    train_sae(resumed, x, steps=10, batch_size=64, checkpoint_dir=str(tmp_path),
              checkpoint_every=10, progress=False)
    again = SparseAutoencoder(16, expansion=2, k=2, seed=5)   # other init: restore must win
    train_sae(again, x, steps=20, batch_size=64, checkpoint_dir=str(tmp_path), progress=False)
    np.testing.assert_allclose(again.W_enc.numpy(), straight.W_enc.numpy(), atol=1e-5)


def test_save_load_roundtrip(tmp_path):
    sae = SparseAutoencoder(8, expansion=2, k=3, seed=1)
    save_sae(str(tmp_path / "s.npz"), sae, {"note": 1})
    back = load_sae(str(tmp_path / "s.npz"))
    assert back.config() == sae.config()
    np.testing.assert_array_equal(back.W_dec.numpy(), sae.W_dec.numpy())
    assert (tmp_path / "s.json").exists()


def test_feature_edit_identity_and_ablation():
    sae = SparseAutoencoder(8, expansion=4, k=4, seed=2)
    x = tf.constant(np.random.default_rng(3).standard_normal((2, 2, 3, 8)).astype(np.float32))
    np.testing.assert_allclose(features.feature_edit(sae, 5, 1.0)(x).numpy(), x.numpy(),
                               atol=1e-5)
    z = sae.encode(tf.reshape(x, (-1, 8))).numpy()
    latent = int(np.argmax(z.sum(0)))
    ablated = features.feature_edit(sae, latent, 0.0)(x).numpy().reshape(-1, 8)
    expected = x.numpy().reshape(-1, 8) - z[:, latent:latent + 1] * sae.W_dec.numpy()[latent]
    np.testing.assert_allclose(ablated, expected, atol=1e-5)


def test_top_examples_and_selectivity_on_planted_activations():
    sae = SparseAutoencoder(4, expansion=2, k=1, seed=0)
    sae.W_enc.assign(np.eye(4, 8, dtype=np.float32))
    acts = np.zeros((2, 3, 1, 2, 4), np.float32)       # (S, N, h, w, C)
    acts[1, 2, 0, 1, 0] = 5.0                           # latent 0 peaks at image 2, col 1, step 1
    acts[0, 0, 0, 0, 0] = 1.0
    top = features.top_examples(sae, acts, 0, num=2)
    assert (top["image"][0], top["col"][0], top["step"][0], top["value"][0]) == (2, 1, 1, 5.0)
    assert top["image"][1] == 0
    sel = features.class_selectivity(sae, acts, left=[3, 4, 5], right=[6, 7, 8], num_top=1)
    assert sel["class_"][0] == 8 and sel["share"][0] == 1.0
    scores = features.timestep_scores(sae, acts, 0)
    np.testing.assert_allclose(scores["max"], [1.0, 5.0])
    assert features.peak_timestep(sae, acts, [900, 400], 0) == 400


def test_item_feature_edit_scales_each_items_own_latent():
    sae = SparseAutoencoder(8, expansion=4, k=4, seed=2)
    x = tf.constant(np.random.default_rng(4).standard_normal((3, 2, 2, 8)).astype(np.float32))
    ones = tf.Variable(tf.ones((3, sae.num_latents)))
    edit = features.item_feature_edit(sae, ones)
    np.testing.assert_allclose(edit(x).numpy(), x.numpy(), atol=1e-5)
    codes = sae.encode(tf.reshape(x, (-1, 8))).numpy().reshape(3, 4, -1).sum(axis=1)
    latents, scales = [int(j) for j in codes.argmax(axis=1)], [0.0, 3.0, 1.0]   # each fires
    factor = np.ones((3, sae.num_latents), np.float32)
    factor[np.arange(3), latents] = scales
    ones.assign(factor)                                  # the same edit, the variable changed
    edited = edit(x).numpy()
    for i in range(3):
        one = features.feature_edit(sae, latents[i], scales[i])(x[i:i + 1]).numpy()
        np.testing.assert_allclose(edited[i:i + 1], one, atol=1e-5)
    assert np.abs(edited[:2] - x.numpy()[:2]).max(axis=(1, 2, 3)).min() > 1e-2   # ablated, x3
