"""Checks of scripts/causal_trace.py's flags, made while the flags are parsed (no model)."""

from absl import flags

from keras_sd_interp import cli
from keras_sd_interp.data.fashion_mnist import CLASS_NAMES


def parse_cases(cases):
    """["prompt:subject", ...] -> [(prompt, subject), ...].

    Raises ValueError naming the entry: no case, an entry without ':', a subject that is not a
    class word of its prompt, or subjects at different word positions (the text-encoder map
    averages the cases token by token)."""
    if not cases:
        raise ValueError("no case: give prompt:subject pairs, e.g. 'a sneaker and a bag:sneaker'")
    parsed = []
    for case in cases:
        prompt, _, subject = case.rpartition(":")
        if not prompt or subject not in CLASS_NAMES or subject not in prompt.split():
            raise ValueError(f"entry {case!r}: write 'prompt:subject' with the subject a word of "
                             f"the prompt and one of {list(CLASS_NAMES)}")
        parsed.append((prompt, subject))
    positions = {prompt.split().index(subject) for prompt, subject in parsed}
    if len(positions) > 1:
        where = ", ".join(f"{s!r} is word {p.split().index(s)} of {p!r}" for p, s in parsed)
        raise ValueError(f"the subjects stand at different positions ({where}): keep the "
                         "subject at the same word position in every case")
    return parsed


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

    def cases_problem(values):
        try:
            parse_cases(values)
        except ValueError as error:
            return str(error)
        return None

    cli._check("cases", cases_problem, flag_values)
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
