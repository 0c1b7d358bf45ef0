"""File names made from user text (prompts, words), for the reports and the scripts' defaults."""

import os
import re


def prompt_figure_path(prompt, seed, folder=os.path.join("figures", "generate")):
    """Default PNG path of a generated grid: "a sneaker and a bag", 0 ->
    figures/generate/a_sneaker_and_a_bag_seed0.png ("unconditional" for an empty prompt)."""
    slug = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_") or "unconditional"
    return os.path.join(folder, f"{slug}_seed{seed}.png")
