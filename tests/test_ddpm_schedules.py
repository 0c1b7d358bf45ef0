"""Beta schedules, the jump schedules' fairness rule, and their errors."""

import numpy as np
import pytest

from keras_sd_interp.ddpm.diffusion import schedule_constants
from keras_sd_interp.ddpm.jumps import check_jump_points, jump_schedules
from keras_sd_interp.ddpm.schedules import (
    SCHEDULES,
    check_betas,
    get_schedule,
    jump_betas,
    min_jump_steps,
)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_is_valid_and_noises_to_near_pure_noise(name):
    betas = get_schedule(name, 1000)
    check_betas(betas)
    assert betas.shape == (1000,)
    alpha_bar_end = np.prod(1.0 - betas)
    assert alpha_bar_end < 1e-3, alpha_bar_end


def test_linear_schedule_endpoints():
    betas = get_schedule("linear", 300)
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    assert np.sum(betas) == pytest.approx(300 * (1e-4 + 0.02) / 2)


def test_posterior_variance_matches_the_formula():
    betas = get_schedule("cosine", 50)
    c = schedule_constants(betas)
    t = 17
    expected = betas[t] * (1 - np.prod(1 - betas[:t])) / (1 - np.prod(1 - betas[: t + 1]))
    assert c["posterior_variance"][t] == pytest.approx(expected, rel=1e-12)
    assert c["posterior_variance"][0] == 0.0


@pytest.mark.parametrize("t", [0, 37, 150, 299])
def test_jump_beta_sum_equals_the_remainder_it_replaces(t):
    betas = get_schedule("linear", 300)
    steps = min_jump_steps(betas, t, max_beta=0.5)
    jump = jump_betas(betas, t, steps)
    assert np.sum(jump) == pytest.approx(np.sum(betas[: t + 1]), rel=1e-12)
    assert np.all(jump <= 0.5) and np.all(jump > 0)
    assert steps == max(1, int(np.ceil(np.sum(betas[: t + 1]) / 0.5)))


def test_jump_schedules_all_end_at_the_same_total():
    betas = get_schedule("linear", 300)
    schedules = jump_schedules(betas, [299, 200, 100, 0])
    assert list(schedules) == [299, 200, 100, 0]
    for t, schedule in schedules.items():
        assert np.sum(schedule) == pytest.approx(np.sum(betas), rel=1e-12)
        np.testing.assert_array_equal(schedule[len(schedule) - (299 - t):], betas[t + 1:])


def test_bad_betas_and_jump_points_are_clear_errors():
    with pytest.raises(ValueError, match=r"open interval \(0, 1\); beta\[1\] = 1.0"):
        check_betas([0.1, 1.0])
    with pytest.raises(ValueError, match="open interval"):
        check_betas([0.0, 0.1])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        check_betas([])
    with pytest.raises(ValueError, match="valid ones are"):
        get_schedule("exponential", 10)
    betas = get_schedule("linear", 300)
    with pytest.raises(ValueError, match="outside the schedule: valid are 0..299"):
        jump_betas(betas, 300, 5)
    with pytest.raises(ValueError, match="use at least 4 steps"):
        jump_betas(betas, 299, 3)  # 3.015 / 3 > 1
    with pytest.raises(ValueError, match="in 0..299"):
        check_jump_points([100, 300], 300)
