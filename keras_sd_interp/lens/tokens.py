"""Concepts are text: where a word or phrase of a prompt sits on the token axis, through the
pipeline's own tokenizer (tiny's word tokenizer or SD v1.4's CLIP BPE), for every tool (DAAM's
word maps, causal tracing's corrupted subject, editing's concept rows).

    span = concept_span(pipe, "a painting in the style of Van Gogh", "Van Gogh")
    span.positions   # [7, 8, 9]: every sub-token of every occurrence (the start token is 0)
    span.last        # 9: the last sub-token of the first occurrence (the papers' last subject token)
    span.ids         # (2451, 19697, 651): the phrase's own BPE ids

A phrase is matched by its sub-token ids (the phrase tokenized alone, without start and end),
so multi-word phrases, words split into several sub-tokens, case and punctuation behave as the
tokenizer makes them. A phrase not in the prompt, or (tiny) a word outside the vocabulary, is a
ValueError naming what is valid.
"""

import dataclasses
import re

import numpy as np


def prompt_words(prompt):
    """The words of a prompt as users name them: lower case, punctuation stripped."""
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


def occurrences(prompt_ids, word_ids):
    """Each occurrence of `word_ids` in a prompt's token ids (start token at 0) as a list of
    positions; [] when absent. prompt_ids: the full padded row; word_ids: without start/end."""
    prompt_ids, word_ids = list(map(int, prompt_ids)), list(map(int, word_ids))
    k = len(word_ids)
    if k == 0:
        return []
    return [list(range(start, start + k)) for start in range(1, len(prompt_ids) - k + 1)
            if prompt_ids[start:start + k] == word_ids]  # offset 1: position 0 is the start


def word_token_indices(prompt_ids, word_ids):
    """Positions of every occurrence of a word's sub-token ids, flattened and sorted."""
    return sorted({t for found in occurrences(prompt_ids, word_ids) for t in found})


@dataclasses.dataclass(frozen=True)
class TokenSpan:
    """Where a phrase sits in a prompt's tokens.

    Attributes: phrase, prompt; ids (the phrase's sub-token ids); occurrences (a tuple of
    position tuples, one per occurrence, start token at 0); positions (all of them, sorted);
    first (the first occurrence's positions); last (its last position).
    """

    phrase: str
    prompt: str
    ids: tuple
    occurrences: tuple

    @property
    def positions(self):
        return sorted({t for found in self.occurrences for t in found})

    @property
    def first(self):
        return list(self.occurrences[0])

    @property
    def last(self):
        return self.occurrences[0][-1]


class Tokens:
    """A pipeline's tokenization seen as sub-token id lists (works for tiny and SD v1.4).

    Attributes: start, end (the start and end token ids), length (tokens per padded row).
    """

    def __init__(self, pipe):
        self.pipe = pipe
        empty = np.asarray(pipe.tokens([""]))[0]
        self.start, self.end = int(empty[0]), int(empty[1])
        self.length = len(empty)

    def row(self, prompt, what="prompt"):
        """The padded token ids of `prompt`: (length,) ints, start token first. TypeError for a
        prompt that is not a string; the tokenizer's ValueError (too long, unknown words)."""
        if not isinstance(prompt, str):
            raise TypeError(f"{what}={prompt!r}: give a string")
        try:
            return [int(t) for t in np.asarray(self.pipe.tokens([prompt]))[0]]
        except ValueError as error:  # too long, unknown word: the tokenizer says what is valid
            raise ValueError(f"{what} {prompt!r}: {error}") from None

    def split(self, text, what="text"):
        """Sub-token ids of `text` (no start/end)."""
        row = self.row(text, what)[1:]
        return row[:row.index(self.end)] if self.end in row else row

    def prompt_length(self, prompt):
        """Tokens of `prompt` from the start token through the first end token."""
        return len(self.split(prompt)) + 2

    def span(self, prompt, phrase):
        """The TokenSpan of `phrase` in `prompt`; ValueError naming the prompt's words when the
        phrase's tokens are not in the prompt's (or the tokenizer's error for unknown words)."""
        self.row(prompt)  # the prompt's own errors first
        ids = self.split(phrase, "phrase")
        if not ids:
            raise ValueError(f"phrase {phrase!r} has no tokens: give a word or phrase of the "
                             f"prompt {prompt!r}, one of its words {prompt_words(prompt)} or a "
                             "run of them")
        found = occurrences(self.row(prompt), ids)
        if not found:
            raise ValueError(f"phrase {phrase!r} is not in the prompt {prompt!r}: give one of its "
                             f"words {prompt_words(prompt)} or a run of consecutive words")
        return TokenSpan(phrase, prompt, tuple(ids), tuple(tuple(f) for f in found))

    def word_indices(self, prompt, word):
        """Token positions of `word` in `prompt` (all occurrences); ValueError naming the
        prompt's words when it is absent."""
        return self.span(prompt, word).positions


def concept_span(pipe, prompt, phrase):
    """`Tokens(pipe).span(prompt, phrase)`: the TokenSpan of a word or phrase of `prompt`."""
    return Tokens(pipe).span(prompt, phrase)
