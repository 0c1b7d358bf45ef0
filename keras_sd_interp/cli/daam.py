"""Checks of scripts/daam.py's request, made before any model is built."""

from keras_sd_interp.attribution.daam import (DEFAULT_TAU, check_indices, check_tau,
                                              prompt_words)
from keras_sd_interp.lens.names import NUM_TRANSFORMERS


def check_prompt(prompt):
    if not isinstance(prompt, str) or not prompt_words(prompt):
        raise ValueError(f"prompt={prompt!r} is empty: DAAM maps the words of a prompt; "
                         "give a non-empty prompt such as 'a sneaker and a bag'")
    return prompt


def check_request(model, prompts, words=(), layers=None, heads=None, tau=DEFAULT_TAU):
    """Checks a DAAM request before any model is built (scripts/daam.py's flags).

    model: "tiny" or "sd14"; prompts: list of str; words: each must be in some prompt;
    layers: indices 0..15; heads: 0..num_heads-1; tau in [0, 1]. Raises ValueError naming the
    bad value and what is valid. Prompt length: exact for tiny (its word tokenizer), a lower
    bound (one token per word) for sd14, whose BPE tokenizer needs its vocabulary file.
    """
    from keras_sd_interp.cli import prompt_problem
    from keras_sd_interp.models.config import get_config

    config = get_config(model)
    check_tau(tau)
    check_indices("layer", layers, NUM_TRANSFORMERS)
    check_indices("head", heads, config.num_heads)
    if not prompts:
        raise ValueError("no prompt: give at least one --prompt")
    for prompt in prompts:
        check_prompt(prompt)
        problem = prompt_problem(config.name, prompt)
        if problem:
            raise ValueError(problem)
    every = sorted({w for p in prompts for w in prompt_words(p)})
    for word in words:
        if not any(word.lower() in prompt_words(p) for p in prompts):
            raise ValueError(f"word {word!r} is in no prompt; the prompts' words are {every}")
    return config
