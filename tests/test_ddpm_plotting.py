"""Jump figures: GIF frames show the right panels; files are written whole."""

import numpy as np
from PIL import Image

from keras_sd_interp.ddpm.jumps import jump_schedules
from keras_sd_interp.ddpm.schedules import get_schedule
from keras_sd_interp.io import save_figure, save_gif
from keras_sd_interp.reports.plotting.ddpm import cumulative_betas_figure, jump_frames


def test_jump_frames_show_x_t_x0_and_the_latest_jump(tmp_path):
    steps = 20
    x_all = np.linspace(-1, 1, steps)[:, None, None, None] * np.ones((steps, 28, 28, 1))
    x0_all = -x_all
    jump_images = np.stack([np.full((28, 28, 1), 1.0), np.full((28, 28, 1), -1.0)])
    frames = jump_frames(x_all, x0_all, np.array([15, 5]), jump_images, frame_every=5, scale=2, hold=3)
    assert len(frames) == 5 + 3  # steps 19, 14, 9, 4, 0, then the last held 3 more times
    first, at_step_9 = frames[0], frames[2]
    size = 28 * 2
    assert first.shape == (size + 16, 3 * (size + 4))
    panel = lambda frame, k: frame[16:, k * (size + 4) + 2:k * (size + 4) + 2 + size]  # noqa: E731
    assert panel(first, 0).min() == 255 and panel(first, 1).max() == 0  # x = 1, x0_hat = -1
    assert panel(first, 2).max() == 0  # no jump yet at step 19
    assert panel(at_step_9, 2).min() == 255  # the jump from step 15 is white
    save_gif(tmp_path / "a.gif", frames)
    assert Image.open(tmp_path / "a.gif").n_frames == 5  # Pillow merges identical held frames
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_cumulative_beta_curves_end_at_the_same_total(tmp_path):
    betas = get_schedule("linear", 300)
    figure = cumulative_betas_figure(betas, jump_schedules(betas, [250, 100]))
    ends = [line.get_ydata()[-1] for line in figure.axes[0].get_lines()]
    np.testing.assert_allclose(ends, np.sum(betas), rtol=1e-12)
    save_figure(tmp_path / "b.png", figure)
    assert Image.open(tmp_path / "b.png").size[0] > 100
