"""Words -> token positions, as prompt-to-prompt counts them: a prompt's words are its
space-separated pieces, and word k owns the tokens its text becomes (start token at 0).

    spans = word_spans(tokens, "a trouser and a boot")   # [[1], [2], [3], [4], [5]]
    word_positions(tokens, "a trouser and a boot", "a")  # [1, 4]

`tokens` is a `lens.tokens.Tokens` (the pipeline's own tokenizer: tiny's words or
SD v1.4's BPE, where one word may become several tokens).
"""


def prompt_words(prompt):
    """The words of a prompt: its pieces split on single spaces (prompt-to-prompt's split)."""
    return prompt.split(" ")


def word_spans(tokens, prompt):
    """Per word of `prompt`, the list of its token positions (the start token is position 0).

    Raises ValueError if the words' tokens do not add up to the prompt's (a tokenizer that
    merges across spaces), or the prompt does not fit the tokenizer's length.
    """
    spans, position = [], 1
    for word in prompt_words(prompt):
        count = len(tokens.split(word)) if word else 0
        spans.append(list(range(position, position + count)))
        position += count
    whole = len(tokens.split(prompt))
    if position - 1 != whole:
        raise ValueError(f"prompt {prompt!r}: its words make {position - 1} tokens one by one "
                         f"but {whole} together; write it with single spaces between words")
    if position >= tokens.length:
        raise ValueError(f"prompt {prompt!r} is {position} tokens with the start token; this "
                         f"model's context holds {tokens.length} with the end token")
    return spans


def word_positions(tokens, prompt, word):
    """Token positions of every occurrence of `word` in `prompt` ([] when absent)."""
    spans = word_spans(tokens, prompt)
    return [p for w, span in zip(prompt_words(prompt), spans) if w == word for p in span]


def check_word_in(prompt, word, what):
    """Raises ValueError unless `word` is one of `prompt`'s space-separated words."""
    if word not in prompt_words(prompt):
        raise ValueError(f"{what}: word {word!r} is not in the prompt {prompt!r}; its words "
                         f"are {prompt_words(prompt)}")


def sequence(tokens, prompt):
    """The prompt's token ids from the start token to the end token (no padding), as CLIP's
    `tokenizer.encode` gives them: the sequence refine aligns."""
    row = tokens.row(prompt)
    return row[:row.index(tokens.end, 1) + 1] if tokens.end in row[1:] else row
