"""The three cross-attention controllers of prompt-to-prompt, as specifications.

    Replace(cross_replace_steps=0.8, self_replace_steps=0.4)    # same number of words
    Refine(cross_replace_steps=0.8, self_replace_steps=0.4)     # words added or removed
    Reweight(["boot"], [2.0], base=None)                        # an equalizer per edited prompt

`controller.cross_map(tokens, source, edits)` returns a function
(base (n, heads, Q, L), own (E, n, heads, Q, L)) -> (E, n, heads, Q, L): what each edited
prompt's cross-attention becomes where the source's replaces it (the step tables in `steps.py`
then blend it with the edit's own maps). Everything here is checked and built before a model
runs.
"""

import dataclasses
import numbers

import numpy as np
import tensorflow as tf

from keras_sd_interp.editing.prompt_to_prompt.seq_aligner import (check_same_word_count,
                                                                  refinement_mappers,
                                                                  replacement_mappers)
from keras_sd_interp.editing.prompt_to_prompt.steps import check_bounds, check_cross_steps
from keras_sd_interp.editing.prompt_to_prompt.words import check_word_in, word_positions


@dataclasses.dataclass(frozen=True)
class Controller:
    """When the source's attention is injected (see `steps.py` for the forms)."""

    cross_replace_steps: object = 0.8
    self_replace_steps: object = 0.4

    def check(self, source, edits):
        """Raises ValueError for a bad request; needs no tokenizer and no model."""
        check_cross_steps(self.cross_replace_steps, edits)
        check_bounds(self.self_replace_steps, "self_replace_steps")


class Replace(Controller):
    """Word swap: edited prompts with as many words as the source; token n of an edit takes
    sum_w source[w] * M[w, n] (`seq_aligner.replacement_mapper_from_spans`)."""

    def check(self, source, edits):
        super().check(source, edits)
        for edit in edits:
            check_same_word_count(source, edit)

    def cross_map(self, tokens, source, edits):
        mapper = tf.constant(replacement_mappers(tokens, source, edits))  # (E, L, L)

        def replaced(base, own):
            return tf.einsum("nhqw,ewl->enhql", base, mapper)

        return replaced


class Refine(Controller):
    """Prompt refinement: tokens aligned to the source's take its maps; inserted ones keep
    their own (`seq_aligner.refinement_mapper`)."""

    def cross_map(self, tokens, source, edits):
        index, alphas = refinement_mappers(tokens, source, edits)
        index = tf.constant(index % tokens.length)  # (E, L); -1 (alpha 0) as torch: the last
        alphas = tf.constant(alphas[:, None, None, None, :])         # (E, 1, 1, 1, L)

        def refined(base, own):
            taken = tf.transpose(tf.gather(base, index, axis=-1), [3, 0, 1, 2, 4])
            return taken * alphas + own * (1.0 - alphas)

        return refined


@dataclasses.dataclass(frozen=True)
class Reweight(Controller):
    """Attention re-weighting: the chosen words' maps times one value per edited prompt (no
    renormalisation), over the source's maps or over what `base` (Replace / Refine) makes.

    Args:
        words: the words to weight (each must be a word of every edited prompt).
        values: one number per edited prompt (or one for all).
        base: None (edited prompts must then equal the source) or a Replace / Refine.
    """

    words: tuple = ()
    values: tuple = ()
    base: object = None

    def check(self, source, edits):
        super().check(source, edits)
        words = [self.words] if isinstance(self.words, str) else list(self.words)
        if not words:
            raise ValueError("Reweight: give at least one word to weight")
        for edit in edits:
            for word in words:
                check_word_in(edit, word, "Reweight")
        values = self.equalizer_values(len(edits))
        if not all(isinstance(v, numbers.Real) and np.isfinite(v) for v in values):
            raise ValueError(f"Reweight: values {self.values!r} must be finite numbers")
        if self.base is None and any(edit != source for edit in edits):
            raise ValueError("Reweight without a base weights the source's own maps: the "
                             "edited prompts must equal the source (or give base=Replace() "
                             "or Refine())")
        if self.base is not None:
            if not isinstance(self.base, (Replace, Refine)):
                raise ValueError(f"Reweight base={self.base!r}: use Replace(), Refine() or None")
            self.base.check(source, edits)

    def equalizer_values(self, num_edits):
        values = [self.values] if isinstance(self.values, numbers.Real) else list(self.values)
        if len(values) == 1:
            values = values * num_edits
        if len(values) != num_edits:
            raise ValueError(f"Reweight: {len(values)} values for {num_edits} edited prompts; "
                             "give one per edited prompt (or one for all)")
        return values

    def equalizer(self, tokens, edits):
        """(E, L) float32: the value of edit e at the tokens of the chosen words, 1 elsewhere."""
        words = [self.words] if isinstance(self.words, str) else list(self.words)
        table = np.ones((len(edits), tokens.length), np.float32)
        for e, (edit, value) in enumerate(zip(edits, self.equalizer_values(len(edits)))):
            for word in words:
                table[e, word_positions(tokens, edit, word)] = value
        return table

    def cross_map(self, tokens, source, edits):
        equalizer = tf.constant(self.equalizer(tokens, edits)[:, None, None, None, :])
        underneath = None if self.base is None else self.base.cross_map(tokens, source, edits)

        def reweighted(base, own):
            maps = base[None] if underneath is None else underneath(base, own)
            return maps * equalizer

        return reweighted
