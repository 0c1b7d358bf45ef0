"""Files of the DDPM: the evaluation's cached sample batches, its JSON and figures, and the jump
figures of single chains (GIF, PNG strip, cumulative betas)."""

import glob
import os

import numpy as np
from tqdm import tqdm

from keras_sd_interp import io
from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
from keras_sd_interp.data.pixels import to_uint8
from keras_sd_interp.ddpm.evaluate import (
    default_jump_points,
    eval_arrays,
    eval_batch,
    judge_test_accuracy,
    score_eval_arrays,
)
from keras_sd_interp.ddpm.jumps import jump_schedules, run_jump_experiment
from keras_sd_interp.judge.judge import predict_classes
from keras_sd_interp.reports.plotting.ddpm import (
    agreement_figure,
    cumulative_betas_figure,
    jump_frames,
    jump_strip_figure,
)
from keras_sd_interp.reports.plotting.grids import image_grid_figure


def generate_eval_batches(sampler, cache_dir, num_samples=1000, batch_size=200, jump_points=None,
                          max_jump_beta=0.5, seed=0):
    """Draws `num_samples` samples in batches (`ddpm.evaluate.eval_batch`), one `.npz` per batch
    in `cache_dir`; batches already there are skipped, so a stopped run resumes. A batch drawn
    with other `Sampler.settings` (start, clipping) is a ValueError, not silently mixed in."""
    jump_points = jump_points or default_jump_points(sampler)
    for k in tqdm(range(int(np.ceil(num_samples / batch_size))), desc="sample batches"):
        path = os.path.join(cache_dir, f"batch{k:03d}.npz")
        if os.path.exists(path):
            with np.load(path) as batch:  # Caches from before these settings: the example's.
                cached = {"start": str(batch["start"]) if "start" in batch else "standard",
                          "clip_x0": bool(batch["clip_x0"]) if "clip_x0" in batch else False}
            for key, value in sampler.settings.items():
                if cached[key] != value:
                    raise ValueError(f"{path} was drawn with {key}={cached[key]!r}, this run asks "
                                     f"for {value!r}: use another cache folder")
            continue
        arrays = eval_batch(sampler, k, batch_size, jump_points, max_jump_beta, seed)
        with io.atomic_path(path) as tmp:
            np.savez(tmp, **arrays)


def load_eval_arrays(cache_dir):
    """The cached batches joined by `ddpm.evaluate.eval_arrays` (batch000.npz is needed)."""
    paths = sorted(glob.glob(os.path.join(cache_dir, "batch*.npz")))
    if not paths or not paths[0].endswith("batch000.npz"):
        raise FileNotFoundError(f"no generated batches in {cache_dir!r} (batch000.npz is needed)")
    batches = []
    for path in paths:
        with np.load(path) as batch:
            batches.append(dict(batch))
    return eval_arrays(batches)


def write_eval_report(judge, arrays, out_dir):
    """Scores the evaluation arrays and writes `ddpm_eval.json`, `jump_agreement.png` and
    `samples.png` (the first 40 samples with their judge classes); returns the results dict."""
    results, shares = score_eval_arrays(judge, arrays)
    results["judge_test_accuracy"] = judge_test_accuracy(judge)
    io.save_json(os.path.join(out_dir, "ddpm_eval.json"), results)
    experiment = results["jump_experiment"]
    io.save_figure(os.path.join(out_dir, "jump_agreement.png"),
                   agreement_figure(experiment["jump_points"], shares, experiment["num_chains"]))
    grid = arrays["samples"][:40]
    titles = [CLASS_NAMES[c] for c in predict_classes(judge, grid)[0]]
    figure = image_grid_figure(to_uint8(grid), titles, columns=10, cell_inches=(1.0, 1.15),
                               title_size=7, full_range=True)
    io.save_figure(os.path.join(out_dir, "samples.png"), figure)
    return results


def write_jump_betas(train_betas, jump_points, max_jump_beta, out_dir):
    """`jump_cumulative_betas.png`: the cumulative betas of the standard chain and each jump."""
    schedules = jump_schedules(train_betas, jump_points, max_jump_beta)
    path = os.path.join(out_dir, "jump_cumulative_betas.png")
    io.save_figure(path, cumulative_betas_figure(train_betas, schedules))
    return path


def write_jump_chain(sampler, judge, seed, jump_points, max_jump_beta, out_dir, frame_every=5):
    """One chain with jumps: `jumps_seed{seed}.png` (strip with judge classes) and
    `jumps_seed{seed}.gif`; returns the judge's class name of the final sample."""
    if int(frame_every) < 1:
        raise ValueError(f"frame_every={frame_every} must be a positive integer (chain steps "
                         "per GIF frame)")
    run = run_jump_experiment(sampler, 1, seed, jump_points, max_jump_beta)
    names = {kind: [CLASS_NAMES[c] for c in predict_classes(judge, run[kind][:, 0])[0]]
             for kind in ("x_t", "x0_hat", "jump")}
    final_name = CLASS_NAMES[predict_classes(judge, run["final"])[0][0]]
    figure = jump_strip_figure(run["x_t"][:, 0], run["x0_hat"][:, 0], run["jump"][:, 0],
                               run["final"][0], run["jump_points"], names)
    figure.suptitle(f"seed {seed}: final judged '{final_name}'", fontsize=9, y=1.02)
    io.save_figure(os.path.join(out_dir, f"jumps_seed{seed}.png"), figure)
    frames = jump_frames(run["x_all"][:, 0], run["x0_hat_all"][:, 0], run["jump_points"],
                         run["jump"][:, 0], frame_every=frame_every)
    io.save_gif(os.path.join(out_dir, f"jumps_seed{seed}.gif"), frames, duration_ms=80)
    return final_name
