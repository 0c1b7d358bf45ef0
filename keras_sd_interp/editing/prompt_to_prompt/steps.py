"""When the edits act: `cross_replace_steps` and `self_replace_steps` as prompt-to-prompt
takes them, turned into per-step tables.

- cross_replace_steps: a fraction f (steps 0..f of the run), a (start, end) pair of fractions,
  or a dict {word: fraction or pair} with an optional "default_" (else (0, 1)) for the tokens
  of no listed word. As `ptp_utils.get_time_words_attention_alpha`: the table has num_steps + 1
  rows and a bound b covers rows int(b * (num_steps + 1)).
- self_replace_steps: a fraction or a (start, end) pair; steps int(start * num_steps) ..
  int(end * num_steps) - 1 inject the source's self-attention.
"""

import math
import numbers

import numpy as np

from keras_sd_interp.editing.prompt_to_prompt.words import word_positions

DEFAULT_KEY = "default_"


def check_bounds(value, what):
    """A fraction f -> (0, f); a pair (start, end) with 0 <= start <= end <= 1 -> itself.

    Raises ValueError naming `what` and the bad value otherwise."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = (0.0, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            for v in value):
        raise ValueError(f"{what}={value!r}: give a fraction in [0, 1] or a (start, end) pair "
                         "of fractions")
    start, end = float(value[0]), float(value[1])
    if not 0.0 <= start <= end <= 1.0:
        raise ValueError(f"{what}={value!r}: fractions must satisfy 0 <= start <= end <= 1")
    return start, end


def check_cross_steps(cross_replace_steps, edits):
    """The cross_replace_steps as a dict {key: (start, end)}; per-word keys must be words of
    at least one edited prompt."""
    if not isinstance(cross_replace_steps, dict):
        cross_replace_steps = {DEFAULT_KEY: cross_replace_steps}
    checked = {DEFAULT_KEY: (0.0, 1.0)}
    for key, bounds in cross_replace_steps.items():
        if key != DEFAULT_KEY and not any(key in edit.split(" ") for edit in edits):
            raise ValueError(f"cross_replace_steps: word {key!r} is in none of the edited "
                             f"prompts {list(edits)}")
        checked[key] = check_bounds(bounds, f"cross_replace_steps[{key!r}]")
    return checked


def _fill(table, bounds, edit, positions):
    rows = table.shape[0]
    start, end = int(bounds[0] * rows), int(bounds[1] * rows)
    table[:, edit, positions] = 0.0
    table[start:end, edit, positions] = 1.0


def cross_alpha(tokens, edits, cross_replace_steps, num_steps):
    """Per step, per edited prompt, per token: 1 where the source's cross-attention replaces
    the edit's own. Returns float32 (num_steps, E, L) (row num_steps of theirs is never used)."""
    windows = check_cross_steps(cross_replace_steps, edits)
    table = np.zeros((num_steps + 1, len(edits), tokens.length), np.float32)
    for e, edit in enumerate(edits):
        _fill(table, windows[DEFAULT_KEY], e, slice(None))
        for word, bounds in windows.items():
            positions = [] if word == DEFAULT_KEY else word_positions(tokens, edit, word)
            if positions:
                _fill(table, bounds, e, positions)
    return table[:num_steps]


def self_window(self_replace_steps, num_steps):
    """(first step, end step) of self-attention injection: steps first..end-1."""
    start, end = check_bounds(self_replace_steps, "self_replace_steps")
    return int(num_steps * start), int(num_steps * end)
