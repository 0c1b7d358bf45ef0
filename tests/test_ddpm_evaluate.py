"""The evaluation's generation half: per-batch caches that resume, and jump arrays that line up."""

import os

import numpy as np
import pytest

from keras_sd_interp.ddpm.jumps import agreement_with_final
from keras_sd_interp.ddpm.sampler import Sampler
from keras_sd_interp.ddpm.schedules import get_schedule
from keras_sd_interp.reports.ddpm import generate_eval_batches, load_eval_arrays
from test_ddpm_sampler import NoiseOracle  # tests/ is on sys.path under pytest


def test_generate_caches_batches_resumes_and_an_oracle_agrees_everywhere(tmp_path):
    betas = get_schedule("linear", 60)
    x0 = np.random.default_rng(0).uniform(-1, 1, size=(3, 28, 28, 1)).astype(np.float32)
    sampler = Sampler(NoiseOracle(x0, betas), betas, jit_compile=False)
    cache = str(tmp_path / "eval")
    generate_eval_batches(sampler, cache, num_samples=6, batch_size=3, jump_points=[59, 30, 5])
    assert sorted(os.listdir(cache)) == ["batch000.npz", "batch001.npz"]
    stamp = os.path.getmtime(os.path.join(cache, "batch001.npz"))
    generate_eval_batches(sampler, cache, num_samples=6, batch_size=3, jump_points=[59, 30, 5])
    assert os.path.getmtime(os.path.join(cache, "batch001.npz")) == stamp  # skipped, not redone

    # A rerun with another start refuses to mix its samples into this cache.
    from keras_sd_interp.ddpm.prior import MatchedStart
    matched = Sampler(sampler.model, betas, jit_compile=False,
                      start=MatchedStart(np.zeros(784), np.eye(784), 0.05))
    with pytest.raises(ValueError, match=r"batch000.npz was drawn with start='standard', this run "
                                         r"asks for 'matched'"):
        generate_eval_batches(matched, cache, num_samples=6, batch_size=3, jump_points=[59, 30, 5])

    arrays = load_eval_arrays(cache)
    assert str(arrays["start"]) == "standard"
    assert arrays["samples"].shape == (6, 28, 28, 1)
    assert arrays["jump_points"].tolist() == [59, 30, 5] and arrays["x_t"].shape == (3, 3, 28, 28, 1)
    # With the true noise the standard chain ends exactly at x0. A jump feeds the oracle the
    # nearest training step, whose a-bar differs a little from the jump's, so it ends near x0.
    np.testing.assert_allclose(arrays["final"], x0, atol=2e-4)
    jump_error = np.abs(arrays["jump"] - x0[None]).max()
    assert 1e-4 < jump_error < 0.05, jump_error
    # A "classifier" by mean brightness: predicted x0 and jumps agree with the final; x_t at t=59 is noise.
    classify = lambda images: np.argsort(np.argsort(images.mean(axis=(1, 2, 3))))  # noqa: E731
    shares = agreement_with_final(classify, arrays)
    assert shares["x0_hat"].tolist() == [1.0, 1.0, 1.0] and shares["jump"].tolist() == [1.0, 1.0, 1.0]
