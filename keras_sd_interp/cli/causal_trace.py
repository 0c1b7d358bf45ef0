"""Checks of scripts/causal_trace.py's flags, made while the flags are parsed (no model)."""

from absl import flags

from keras_sd_interp import cli


def _words(text):
    from keras_sd_interp.lens.tokens import prompt_words

    return prompt_words(text)


def _find(words, phrase):
    """Index of the first run of `words` equal to `phrase`, or None."""
    k = len(phrase)
    return next((i for i in range(len(words) - k + 1) if k and words[i:i + k] == phrase), None)


def check_subject(prompt, subject):
    """ValueError unless `subject` is a word or a run of consecutive words of `prompt` (case and
    punctuation ignored); the tokenizer checks the tokens later, before any model is built."""
    if _find(_words(prompt), _words(subject)) is None:
        words = _words(prompt)
        raise ValueError(f"subject {subject!r} is not in the prompt {prompt!r}: give one of its "
                         f"words {words} or a run of consecutive words")


def parse_cases(cases, prompt=None, subject=None):
    """--prompt and --subject (one case), else --cases ["prompt:subject", ...] ->
    [(prompt, subject), ...].

    Raises ValueError naming the entry: no case, an entry without ':', a subject that is not a
    word or phrase of its prompt, --prompt without --subject (or the reverse)."""
    if (prompt is None) != (subject is None):
        raise ValueError("give --prompt and --subject together (the subject is the word or "
                         "phrase of the prompt whose tokens are corrupted)")
    if prompt is not None:
        check_subject(prompt, subject)
        return [(prompt, subject)]
    if not cases:
        raise ValueError("no case: give prompt:subject pairs, e.g. 'a sneaker and a bag:sneaker'")
    parsed = []
    for case in cases:
        text, _, phrase = case.rpartition(":")
        if not text or not phrase:
            raise ValueError(f"entry {case!r}: write 'prompt:subject', the subject a word or "
                             "phrase of the prompt")
        try:
            check_subject(text, phrase)
        except ValueError as error:
            raise ValueError(f"entry {case!r}: {error}") from None
        parsed.append((text, phrase))
    return parsed


def cases_from_flags(flag_values):
    return parse_cases(flag_values.cases, flag_values.prompt, flag_values.subject)


def positions_problem(cases):
    """None when every subject stands at the same word position of its prompt (needed when text
    components are traced: the text map averages the cases token by token), else why not."""
    positions = [_find(_words(prompt), _words(subject)) for prompt, subject in cases]
    if len(set(positions)) < 2:
        return None
    where = ", ".join(f"{s!r} is word {p} of {c!r}" for (c, s), p in zip(cases, positions))
    return (f"the subjects stand at different positions ({where}): keep the subject at the same "
            "word position in every case (or trace --parts=unet)")


def judge_problem(cases):
    """None when the judge can read every case's prompt (a tiny caption), else why not."""
    from keras_sd_interp.scoring.judge import caption_items

    for prompt, _ in cases:
        try:
            caption_items(prompt)
        except ValueError as error:
            return f"--scorer=judge: {error}"
    return None


def component_names(model, parts):
    """Every component name causal tracing can restore on `model` (no model is built): the 70
    U-Net components, and the text components at every token of the context."""
    from keras_sd_interp.lens.components import TEXT_KINDS
    from keras_sd_interp.lens.names import (NUM_RES_BLOCKS, NUM_TRANSFORMERS, res_block_site,
                                            text_layer_site, transformer_site)
    from keras_sd_interp.models import DEFAULT_SIZES, bundled

    names = []
    if parts in ("unet", "both"):
        names += [res_block_site(i) for i in range(NUM_RES_BLOCKS)]
        names += [transformer_site(i, kind) for i in range(NUM_TRANSFORMERS)
                  for kind in ("attn1", "attn2", "ff")]
    if parts in ("text", "both"):
        layers = 12 if model == "sd14" else bundled.read_record(bundled.ASSETS_DIR)["text_layers"]
        names += [f"{text_layer_site(i, kind)}@{t}" for i in range(layers) for kind in TEXT_KINDS
                  for t in range(DEFAULT_SIZES[model][2])]
    return names


def components_problem(patterns, model, parts):
    """None, or the first --components pattern that matches no component of --model and
    --parts (a token past the prompt is still refused later, by the tokenizer's count)."""
    import fnmatch

    names = component_names(model, parts)
    for pattern in patterns or []:
        if not fnmatch.filter(names, pattern):
            return (f"--components: {pattern!r} matches no component of --model={model} "
                    f"--parts={parts}; names look like {names[0]!r}, 'spatial_transformer_3.attn2'"
                    f", 'text.layer_0.mlp.out@2'; globs like '*.attn2' or 'text.*@5'")
    return None


def parse_step_range(value, num_steps):
    """"start:stop" -> range(start, stop) within 0..num_steps; None -> None. ValueError else."""
    if value is None:
        return None
    try:
        start, stop = (int(x) for x in value.split(":"))
    except ValueError:
        raise ValueError(f"{value!r}: write start:stop, e.g. 0:5") from None
    if not 0 <= start < stop <= num_steps:
        raise ValueError(f"{value!r}: need 0 <= start < stop <= --num_steps ({num_steps})")
    return range(start, stop)


def register_checks(flag_values=flags.FLAGS):
    """Validators for every flag of scripts/causal_trace.py."""

    def cases_checker(values):
        try:
            cases = parse_cases(values["cases"], values["prompt"], values["subject"])
        except ValueError as error:
            raise flags.ValidationError(str(error)) from None
        judged = values["scorer"] == "judge" or (values["scorer"] == "auto"
                                                 and values["model"] == "tiny")
        problem = judge_problem(cases) if judged else None
        if problem is None and values["parts"] != "unet":
            problem = positions_problem(cases)
        if problem:
            raise flags.ValidationError(problem)
        return True

    flags.register_multi_flags_validator(["cases", "prompt", "subject", "scorer", "model", "parts"],
                                         cases_checker, flag_values=flag_values)
    cli.check_int_list("seeds", 0, flag_values=flag_values)
    cli._check("seeds", lambda values: None if values else
               "no seed: give initial-latent seeds, e.g. 0,1,2,3", flag_values)
    cli.check_float("noise_scale", 0, exclusive_minimum=True, flag_values=flag_values)
    cli.check_int("num_steps", 1, flag_values=flag_values)
    cli.check_int("chunk_size", 1, flag_values=flag_values)
    cli.check_float("guidance", flag_values=flag_values)
    cli.check_out_dir("output_dir", flag_values=flag_values)

    def step_range_checker(values):
        try:
            parse_step_range(values["step_range"], values["num_steps"] or 1)
        except ValueError as error:
            raise flags.ValidationError(f"--step_range={error}") from None
        return True

    flags.register_multi_flags_validator(["step_range", "num_steps"], step_range_checker,
                                         flag_values=flag_values)

    def components_checker(values):
        problem = components_problem(values["components"], values["model"], values["parts"])
        if problem:
            raise flags.ValidationError(problem)
        return True

    flags.register_multi_flags_validator(["components", "model", "parts"], components_checker,
                                         flag_values=flag_values)
