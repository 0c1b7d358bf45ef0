"""Words -> token positions, through a pipeline's own tokenizer (tiny's word tokenizer or
SD v1.4's BPE): a word's map averages the maps of its sub-tokens at every occurrence."""

import re

import numpy as np


def prompt_words(prompt):
    """The words of a prompt as DAAM's users name them: lower case, punctuation stripped."""
    return [w for w in (re.sub(r"^[^\w]+|[^\w]+$", "", word) for word in prompt.lower().split())
            if w]


def check_words(prompt, words):
    """Every word must be one of the prompt's words; the error lists them."""
    valid = prompt_words(prompt)
    for word in words:
        if word.lower() not in valid:
            raise ValueError(f"word {word!r} is not in the prompt {prompt!r}; its words are "
                             f"{valid} (use open_vocabulary_map for other words)")
    return list(words)


def word_token_indices(prompt_ids, word_ids):
    """Positions in a prompt's token ids (start token at 0) of every occurrence of a word's
    sub-token ids; [] when absent. prompt_ids: the full padded row; word_ids: without start/end.
    """
    prompt_ids, word_ids = list(map(int, prompt_ids)), list(map(int, word_ids))
    k = len(word_ids)
    found = []
    if k == 0:
        return found
    for start in range(1, len(prompt_ids) - k + 1):  # offset 1: position 0 is the start token
        if prompt_ids[start:start + k] == word_ids:
            found += range(start, start + k)
    return sorted(set(found))


class Tokens:
    """A pipeline's tokenization seen as sub-token id lists (works for tiny and SD v1.4).

    Attributes: start, end (the start and end token ids), length (tokens per padded row).
    """

    def __init__(self, pipe):
        self.pipe = pipe
        empty = np.asarray(pipe.tokens([""]))[0]
        self.start, self.end = int(empty[0]), int(empty[1])
        self.length = len(empty)

    def row(self, prompt):
        """The padded token ids of `prompt`: (length,) ints, start token first."""
        try:
            return [int(t) for t in np.asarray(self.pipe.tokens([prompt]))[0]]
        except ValueError as error:  # too long, unknown word: the tokenizer says what is valid
            raise ValueError(f"prompt {prompt!r}: {error}") from None

    def split(self, text):
        """Sub-token ids of `text` (no start/end)."""
        row = self.row(text)[1:]
        return row[:row.index(self.end)] if self.end in row else row

    def word_indices(self, prompt, word):
        """Token positions of `word` in `prompt` (all occurrences); ValueError naming the
        prompt's words when it is absent."""
        indices = word_token_indices(self.row(prompt), self.split(word))
        if not indices:
            check_words(prompt, [word])  # names the prompt's words
            raise ValueError(f"word {word!r} was not found in the tokens of {prompt!r}")
        return indices
