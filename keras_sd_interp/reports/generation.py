"""Files of generated images: a prompt's grid, and the tiny model's judged prompt accuracy
(`prompt_accuracy.json`) with a grid of its first pair images."""

import os

from keras_sd_interp import io
from keras_sd_interp.reports.plotting.grids import image_grid
from keras_sd_interp.training.tiny_eval import prompt_accuracy, reference_accuracy


def write_prompt_grid(pipe, prompt, output, num_images=8, num_steps=25, guidance=5.0, seed=0,
                      scale=4):
    """Draws `num_images` images for `prompt` and saves them as one PNG grid, 4 wide, upscaled
    `scale` times (nearest neighbour); returns `output`."""
    images = pipe.text_to_image(
        prompt, batch_size=num_images, num_steps=num_steps,
        unconditional_guidance_scale=guidance, seed=seed,
    )
    grid = image_grid(images, columns=4).repeat(scale, 0).repeat(scale, 1)
    io.save_image(output, grid)
    return output


def write_prompt_accuracy(pipe, judge, test_images, test_labels, output_dir, num_per_class=20,
                          num_steps=25, guidance=5.0, seed=0):
    """Scores the pipeline (`training.tiny_eval`) with the real reference, and writes
    `prompt_accuracy.json` and `pairs_grid.png` (the first 40 pair images) in `output_dir`.

    Returns the scores dict (with "reference")."""
    scores, pair_images = prompt_accuracy(pipe, judge, num_per_class, num_steps, guidance, seed)
    scores["reference"] = reference_accuracy(
        pipe, judge, test_images, test_labels, num_per_class, seed
    )
    io.save_json(os.path.join(output_dir, "prompt_accuracy.json"), scores)
    grid = image_grid(pair_images[:40], columns=8).repeat(3, 0).repeat(3, 1)
    io.save_image(os.path.join(output_dir, "pairs_grid.png"), grid)
    return scores
