"""The jump experiment: at chosen training steps, finish the chain at once with a few large betas.

From x_t at training step t the standard chain still has steps t, ..., 0 to undo, with betas
summing to S_t = sum(train_betas[0..t]). A "jump" finishes instead with n equal betas S_t / n
(the fairness rule: same beta sum), n being the fewest steps that keep each beta <= max_beta.
"""

import numpy as np

from keras_sd_interp.ddpm.schedules import jump_betas, min_jump_steps


def check_jump_points(jump_points, num_timesteps):
    """Returns the jump points as sorted-descending ints after checking each is in 0..T-1."""
    points = [int(t) for t in jump_points]
    bad = [t for t in points if not 0 <= t < num_timesteps]
    if bad or not points:
        raise ValueError(f"jump points {bad or points} are invalid: give at least one training "
                         f"step in 0..{num_timesteps - 1}")
    return sorted(set(points), reverse=True)


def jump_schedules(train_betas, jump_points, max_jump_beta=0.5):
    """For each jump point t, the full beta schedule of that run: standard down to t, then the jump.

    Returns {t: float64 array} where array[:t+1] is the jump (in forward order) and array[t+1:]
    equals train_betas[t+1:]. Their cumulative sums all end at sum(train_betas).
    """
    schedules = {}
    for t in check_jump_points(jump_points, len(train_betas)):
        jump = jump_betas(train_betas, t, min_jump_steps(train_betas, t, max_jump_beta))
        schedules[t] = np.concatenate([jump, np.asarray(train_betas[t + 1:], np.float64)])
    return schedules


def jump_seed(seed, t):
    """The noise seed of the jump from step t, distinct from the standard chain's."""
    return int(seed) * 100_003 + int(t) + 1


def run_jump_experiment(sampler, batch_size, seed, jump_points, max_jump_beta=0.5):
    """Runs the standard chain once and a jump from each jump point.

    Returns a dict of NumPy arrays, with J = len(jump_points) sorted descending:
      "jump_points" (J,), "jump_steps" (J,) the number of jump steps,
      "final" (B, 28, 28, 1) the standard sample,
      "x_t" (J, B, 28, 28, 1) the standard chain's image at each jump point,
      "x0_hat" (J, B, 28, 28, 1) the predicted clean image there,
      "jump" (J, B, 28, 28, 1) the image the jump ends with,
      "x_all", "x0_hat_all" (T, B, 28, 28, 1) every step of the standard chain.
    """
    points = check_jump_points(jump_points, sampler.num_timesteps)
    standard = sampler.sample(batch_size, seed=seed, record=True)
    jumps, steps = [], []
    for t in points:
        betas = jump_betas(sampler.train_betas, t, min_jump_steps(sampler.train_betas, t, max_jump_beta))
        jumps.append(sampler.remaining_from(standard["x"][t], t, betas, seed=jump_seed(seed, t))["final"])
        steps.append(len(betas))
    return {
        "jump_points": np.array(points),
        "jump_steps": np.array(steps),
        "final": standard["final"],
        "x_t": standard["x"][points],
        "x0_hat": standard["x0_hat"][points],
        "jump": np.stack(jumps),
        "x_all": standard["x"],
        "x0_hat_all": standard["x0_hat"],
    }


def agreement_with_final(classify, experiment):
    """Share of images whose class equals the final sample's class, per jump point and kind.

    classify: images (N, 28, 28, 1) in [-1, 1] -> classes (N,). Returns {kind: (J,) float array}
    for kind in "x_t", "x0_hat", "jump", plus "final_classes" (B,).
    """
    final_classes = classify(experiment["final"])
    shares = {"final_classes": final_classes}
    for kind in ("x_t", "x0_hat", "jump"):
        shares[kind] = np.array([np.mean(classify(images) == final_classes)
                                 for images in experiment[kind]])
    return shares
