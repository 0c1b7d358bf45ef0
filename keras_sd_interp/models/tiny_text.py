"""The bundled model's text side: a word-level tokenizer and a small CLIP-style text encoder.

The encoder is keras-cv's CLIP text encoder at small sizes (token + position embeddings,
causal self-attention layers with quick-GELU MLPs, a final layer norm), with keras-cv's inputs
`{"tokens", "positions"}`, so the pipeline code is the same as for Stable Diffusion.
"""

from keras_sd_interp.data.compositions import SPATIAL_WORDS
from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
from keras_sd_interp.models import text_encoder

START, END = "<start>", "<end>"
# Word list of the captions; padding uses the end token, as CLIP does.
VOCABULARY = (START, END, "a", "and") + CLASS_NAMES
# The tiny CLIP's word list: the spatial captions' words too, and, as in CLIP's BPE vocabulary
# (start 49406, end 49407), the start and end tokens last, since keras-cv's CLIP text encoder
# pools the features at argmax(token_ids), which must be the (first) end token.
CLIP_VOCABULARY = ("a", "and") + SPATIAL_WORDS + CLASS_NAMES + (START, END)


class WordTokenizer:
    """Splits a prompt on spaces and maps each word to its index in `vocabulary`.

    `encode("a bag")` -> [start, a, bag, end]; `pad` fills up to `max_length` with the end token.
    """

    def __init__(self, vocabulary=VOCABULARY, max_length=8):
        self.vocabulary = list(vocabulary)
        self.max_length = max_length
        self.index = {word: i for i, word in enumerate(self.vocabulary)}
        self.start_token, self.end_token = self.index[START], self.index[END]

    def encode(self, prompt):
        """Prompt string -> list of token ids with start and end tokens (no padding)."""
        words = prompt.lower().split()
        unknown = [word for word in words if word not in self.index]
        if unknown:
            raise ValueError(
                f"unknown words {unknown} in prompt {prompt!r}: the tiny model knows "
                f"{[w for w in self.vocabulary if w not in (START, END)]}"
            )
        return [self.start_token] + [self.index[word] for word in words] + [self.end_token]

    def pad(self, ids):
        """Token ids -> list of exactly `max_length` ids, padded with the end token."""
        if len(ids) > self.max_length:
            raise ValueError(
                f"prompt is {len(ids)} tokens long; the tiny model takes at most "
                f"{self.max_length} (with start and end)"
            )
        return ids + [self.end_token] * (self.max_length - len(ids))

    def __call__(self, prompts):
        """List of prompts -> int32 array (batch, max_length)."""
        return [self.pad(self.encode(prompt)) for prompt in prompts]

    def padding_mask(self, prompts):
        """List of prompts -> list of (max_length,) 0/1 rows: 1 up to the first end token, as
        keras-cv's CLIP `padding_mask` input."""
        lengths = [len(self.encode(prompt)) for prompt in prompts]
        return [[1] * n + [0] * (self.max_length - n) for n in lengths]


def build_text_encoder(vocab_size, max_length=8, width=64, num_layers=2, num_heads=4):
    """CLIP-style text encoder with sites (`text.layer_0.attn.probs`, ...; see
    `models/text_encoder.py`): inputs tokens, positions (batch, max_length) int32 ->
    (batch, max_length, width) float32."""
    return text_encoder.build_text_encoder(
        vocab_size, max_length, width, num_layers, num_heads, name="tiny_text_encoder"
    )
