"""Concepts are text: spans of words and phrases through the pipeline's own tokenizer (SD v1.4's
CLIP BPE, by keras-cv's SimpleTokenizer; tiny's word tokenizer), shared by DAAM and causal
tracing."""

import numpy as np
import pytest

from keras_sd_interp.lens.tokens import Tokens, concept_span


@pytest.fixture(scope="module")
def sd14_tokens(clip_bpe_dir):
    """The SD v1.4 pipeline's tokenization (random weights: no model is built for tokens)."""
    from keras_sd_interp.models import load_pipeline

    return Tokens(load_pipeline("sd14", 64, 64, weights_dir=clip_bpe_dir, random_weights=True))


@pytest.mark.parametrize("prompt, phrase, where", [
    ("a painting in the style of Van Gogh.", "Van Gogh", [7, 8]),
    ("a photo of the President of the United States", "the President of the United States",
     list(range(4, 10))),
    ("a photo of a bottle in a room", "bottle", [5]),
    ("an essay on interpretability of diffusion", "interpretability", None),
])
def test_sd14_spans_are_keras_cv_tokenizer_ids(sd14_tokens, prompt, phrase, where):
    tokenizer = sd14_tokens.pipe.tokenizer  # keras-cv's SimpleTokenizer on CLIP's BPE
    expected = tokenizer.encode(phrase)[1:-1]
    span = sd14_tokens.span(prompt, phrase)
    row = np.asarray(sd14_tokens.pipe.tokens([prompt]))[0]
    assert list(span.ids) == expected
    assert list(row[span.positions]) == expected and row[0] == 49406  # start token at 0
    assert span.last == span.positions[-1] and len(row) == 77
    if where is not None:
        assert span.positions == where
    else:  # a word that CLIP's BPE splits into several sub-tokens
        assert len(expected) > 1 and span.positions == list(range(4, 4 + len(expected)))


def test_sd14_phrase_not_in_the_prompt_lists_its_words(sd14_tokens):
    span = sd14_tokens.span("a dog and a dog", "dog")
    assert span.occurrences == ((2,), (5,)) and span.first == [2] and span.last == 2
    with pytest.raises(ValueError, match=r"'Gogh Van' is not in the prompt.*\['a', 'painting', "
                                         r"'by', 'van', 'gogh'\]"):
        sd14_tokens.span("a painting by Van Gogh", "Gogh Van")
    with pytest.raises(ValueError, match="has no tokens"):
        sd14_tokens.span("a painting", "  ")


def test_tiny_spans_and_vocabulary_errors():
    from keras_sd_interp.models import load_pipeline

    pipe = load_pipeline("tiny")
    assert concept_span(pipe, "a sneaker and a bag", "sneaker").positions == [2]
    assert concept_span(pipe, "a sneaker and a bag", "a bag").positions == [4, 5]
    assert concept_span(pipe, "a sneaker and a bag", "a").occurrences == ((1,), (4,))
    with pytest.raises(ValueError, match=r"unknown words \['cat'\].*the tiny model knows.*sneaker"):
        concept_span(pipe, "a sneaker and a bag", "cat")
    with pytest.raises(ValueError, match=r"'boot' is not in the prompt.*'sneaker', 'and'"):
        concept_span(pipe, "a sneaker and a bag", "boot")
