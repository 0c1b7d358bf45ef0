"""Flags shared by the scripts, and the models they name. Scripts stay thin: parse, call, write."""

import math
import os
import re

from absl import flags


def define_model_flags(default_height=None, default_width=None, mini=False):
    """Defines --model, --weights_dir, --random_weights, --img_height, --img_width, and with
    `mini` (scripts whose every path runs on it) --model_size (`model_size(flag_values)`)."""
    flags.DEFINE_enum("model", "tiny", ["tiny", "sd14"], "Which U-Net: the bundled small model "
                      "or Stable Diffusion v1.4.")
    flags.DEFINE_string("weights_dir", None, "sd14: directory holding keras-cv's SD v1.4 .h5 "
                        "files (kcv_diffusion_model.h5, ...). Default: download them.")
    flags.DEFINE_bool("random_weights", False, "Use randomly initialised weights (topology "
                      "only; for trying tools without weights).")
    flags.DEFINE_integer("img_height", default_height, "Image height in pixels (default: the "
                         "model's, 512 for sd14, 32 for tiny).")
    flags.DEFINE_integer("img_width", default_width, "Image width in pixels (default: the "
                         "model's, 512 for sd14, 64 for tiny).")
    check_weights_dir()
    check_image_size()
    if mini:
        flags.DEFINE_enum("model_size", "full", ["full", "mini"], "sd14 with --random_weights: "
                          "mini is SD v1.4's layers and site names at small widths (fast tests; "
                          "--weights_dir then only gives CLIP's BPE file). Real weights: full.")
        check_model_size()


def model_size(flag_values):
    """--model_size where the script defines it, else "full"."""
    return flag_values.model_size if "model_size" in flag_values else "full"


def unet_from_flags(flag_values, max_text_length=None):
    """The U-Net named by the model flags (see `define_model_flags`)."""
    from keras_sd_interp.models import load_unet

    return load_unet(
        flag_values.model,
        flag_values.img_height,
        flag_values.img_width,
        max_text_length,
        weights_dir=flag_values.weights_dir,
        random_weights=flag_values.random_weights,
        size=model_size(flag_values),
    )


def pipeline_from_flags(flag_values, img_height=None, img_width=None):
    """The pipeline the model flags name (image size: the flags', else the arguments')."""
    from keras_sd_interp.models import load_pipeline

    return load_pipeline(
        flag_values.model,
        img_height if flag_values.img_height is None else flag_values.img_height,
        img_width if flag_values.img_width is None else flag_values.img_width,
        weights_dir=flag_values.weights_dir, random_weights=flag_values.random_weights,
        size=model_size(flag_values), bundle_dir=getattr(flag_values, "bundle_dir", None))


def text_encoder_from_flags(flag_values):
    """The text encoder of --model (tiny: the bundle's unless --random_weights; sd14: built
    with random weights, which is enough for names and shapes)."""
    if flag_values.model == "sd14":
        from keras_sd_interp.models.text_encoder import build_sd14_text_encoder

        return build_sd14_text_encoder(size=model_size(flag_values))
    from keras_sd_interp.models import load_pipeline

    return load_pipeline("tiny", random_weights=flag_values.random_weights).text_encoder


def prompt_problem(model, prompt):
    """None when --model can read `prompt`, else why not (no model is built): tiny's word
    tokenizer exactly (its vocabulary and 8 tokens); on sd14 a lower bound of the length (one
    token per word, with start and end), as its BPE needs the vocabulary file."""
    from keras_sd_interp.models import DEFAULT_SIZES
    from keras_sd_interp.models.config import get_config

    if not isinstance(prompt, str):
        return f"prompt {prompt!r} is not a string"
    config = get_config(model)
    context = DEFAULT_SIZES[config.name][2]
    if config.name == "tiny":
        from keras_sd_interp.models.tiny_text import WordTokenizer

        tokenizer = WordTokenizer(max_length=context)
        try:
            tokenizer.pad(tokenizer.encode(prompt))
        except ValueError as error:
            return f"prompt {prompt!r}: {error}"
    elif len(prompt.split()) + 2 > context:
        return (f"prompt {prompt!r} has {len(prompt.split())} words: SD v1.4 takes at most "
                f"{context} tokens with start and end")
    return None


def unet_site_problem(site, model, img_height=None, img_width=None, channels=()):
    """None, or why `site` is not a U-Net site of --model (its layer's name is checked without
    building the model), or why `channels` are not channels of it (spatial transformers: their
    width from the preset's config)."""
    from keras_sd_interp.models import DEFAULT_SIZES
    from keras_sd_interp.models.config import get_config
    from keras_sd_interp.models.unet import layer_site_stems
    from keras_sd_interp.training.sae_shards import transformer_site_shape

    stems = layer_site_stems()
    if not any(site == stem or site.startswith(stem + ".") for stem in stems):
        return (f"--site={site!r} is not a U-Net site: sites are named after the layers "
                f"({stems[5]!r}, 'res_block_3.conv1', 'spatial_transformer_8', ...; see "
                "scripts/inspect_unet.py or lens.list_sites)")
    height, width, _ = DEFAULT_SIZES[model]
    shape = transformer_site_shape(get_config(model), img_height or height, img_width or width,
                                   site)
    bad = [c for c in channels if shape is not None and c >= shape[2]]
    if bad:
        return (f"--channels {bad} out of range: {site} of --model={model} has channels "
                f"0..{shape[2] - 1}")
    return None


def parse_numbers(values):
    """Index lists from a list flag: ["0", "3-5"] -> [0, 3, 4, 5] (ranges inclusive).

    Raises ValueError naming the bad entry for anything that is not N or N-M with N <= M.
    """
    numbers = []
    for value in values:
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", value)
        if match is None or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise ValueError(f"bad index {value!r}: give N or a range N-M with N <= M")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        numbers += list(range(first, last + 1))
    return numbers


# Flag checks. Each registers an absl validator, so a bad value stops the script while the flags
# are parsed (exit 1, "flag --name=value: why; what is valid"), before any model is built.


def _check(name, test, flag_values):
    """Registers `test(value) -> None or the problem (str)` as the validator of flag `name`."""

    def checker(value):
        problem = test(value)
        if problem:
            raise flags.ValidationError(problem)
        return True

    flags.register_validator(name, checker, flag_values=flag_values)


def check_int(name, minimum=None, maximum=None, allow_none=False, flag_values=flags.FLAGS):
    """An integer flag in minimum..maximum (either end open when None)."""

    def test(value):
        if value is None:
            return None if allow_none else "give an integer"
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            return "must be " + _range_words(minimum, maximum)
        return None

    _check(name, test, flag_values)


def _range_words(minimum, maximum):
    if maximum is None:
        return "a positive integer (1 or more)" if minimum == 1 else f"an integer >= {minimum}"
    if minimum is None:
        return f"an integer <= {maximum}"
    return f"an integer in {minimum}..{maximum}"


def check_float(name, minimum=None, maximum=None, allow_none=False, exclusive_minimum=False,
                exclusive_maximum=False, flag_values=flags.FLAGS):
    """A finite float flag within the bounds (nan and inf are always refused)."""

    def test(value):
        if value is None:
            return None if allow_none else "give a number"
        low = "" if minimum is None else f"{'>' if exclusive_minimum else '>='} {minimum}"
        high = "" if maximum is None else f"{'<' if exclusive_maximum else '<='} {maximum}"
        wanted = "a finite number" + (f" {low}" if low else "") + (
            f"{' and' if low else ''} {high}" if high else "")
        if not math.isfinite(value):
            return f"must be {wanted}"
        if minimum is not None and (value < minimum or (exclusive_minimum and value == minimum)):
            return f"must be {wanted}"
        if maximum is not None and (value > maximum or (exclusive_maximum and value == maximum)):
            return f"must be {wanted}"
        return None

    _check(name, test, flag_values)


def check_index_list(name, maximum=None, flag_values=flags.FLAGS):
    """A list flag of indices "0,3-5" (see `parse_numbers`), each at most `maximum`."""

    def test(values):
        try:
            numbers = parse_numbers(values or [])
        except ValueError as error:
            return str(error)
        bad = [n for n in numbers if maximum is not None and n > maximum]
        return f"{bad} out of range: give indices in 0..{maximum}" if bad else None

    _check(name, test, flag_values)


def check_int_list(name, minimum=None, flag_values=flags.FLAGS):
    """A list flag of integers ("250,200"), each >= `minimum` when given."""

    def test(values):
        bad = [v for v in values or [] if re.fullmatch(r"\s*-?\d+\s*", v) is None]
        if bad:
            return f"{bad[0]!r} is not an integer: give integers separated by commas, e.g. 250,100"
        low = [int(v) for v in values or [] if minimum is not None and int(v) < minimum]
        return f"{low} out of range: give integers >= {minimum}" if low else None

    _check(name, test, flag_values)


def check_existing_dir(name, what="folder", flag_values=flags.FLAGS):
    """A flag naming a folder that must exist (None and "" pass: the default is used)."""
    _check(name, lambda value: value and existing_dir_problem(value, what), flag_values)


def check_out_dir(name, flag_values=flags.FLAGS):
    """A flag naming an output folder: it may not exist yet, but must not be a file and its
    nearest existing parent must be a writable folder (None and "" pass)."""
    _check(name, lambda value: value and out_dir_problem(value), flag_values)


def check_out_file(name, flag_values=flags.FLAGS):
    """A flag naming an output file: not a folder, and its folder can be made (None passes)."""

    def test(value):
        if not value:
            return None
        if os.path.isdir(value):
            return f"{value!r} is a folder: give a file path (e.g. {os.path.join(value, 'out.png')})"
        return out_dir_problem(os.path.dirname(os.path.abspath(value)))

    _check(name, test, flag_values)


def check_weights_dir(flag_values=flags.FLAGS):
    """--weights_dir (see `define_model_flags`): an existing folder, and only with --model=sd14."""
    check_existing_dir("weights_dir", "weights folder", flag_values)

    def checker(values):
        if values["weights_dir"] and values["model"] != "sd14":
            raise flags.ValidationError(
                f"--weights_dir={values['weights_dir']} is for --model=sd14 (keras-cv's .h5 "
                f"files); --model={values['model']} loads its weights from the package")
        return True

    flags.register_multi_flags_validator(["model", "weights_dir"], checker,
                                         flag_values=flag_values)


def check_model_size(flag_values=flags.FLAGS):
    """--model_size=mini: only with --model=sd14 and --random_weights (`config.check_size`)."""

    def checker(values):
        from keras_sd_interp.models.config import check_size

        try:
            check_size(values["model"], values["model_size"], values["random_weights"])
        except ValueError as error:
            raise flags.ValidationError(f"--model_size={values['model_size']}: {error}") from error
        return True

    flags.register_multi_flags_validator(["model", "model_size", "random_weights"], checker,
                                         flag_values=flag_values)


def check_image_size(flag_values=flags.FLAGS):
    """--img_height/--img_width: positive multiples of the --model's image multiple."""

    def checker(values):
        from keras_sd_interp.models.config import get_config
        from keras_sd_interp.models import DEFAULT_SIZES

        config = get_config(values["model"])
        height, width, _ = DEFAULT_SIZES[config.name]
        try:
            config.check_image_size(
                height if values["img_height"] is None else values["img_height"],
                width if values["img_width"] is None else values["img_width"])
        except ValueError as error:
            raise flags.ValidationError(str(error)) from error
        return True

    flags.register_multi_flags_validator(["model", "img_height", "img_width"], checker,
                                         flag_values=flag_values)


def existing_dir_problem(path, what="folder"):
    """None when `path` is an existing folder, else a sentence saying what is wrong."""
    if not os.path.exists(path):
        return f"{what} {path!r} does not exist"
    if not os.path.isdir(path):
        return f"{what} {path!r} is a file, not a folder"
    return None


def out_dir_problem(path):
    """None when files can be written under `path` (made if missing), else what is wrong."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        return f"{path!r} is a file, not a folder: give a folder to write into"
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"cannot make folder {path!r}: {parent!r} is a file"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot write into {parent!r} (permission denied): give a writable folder"
    return None


def require_out_dir(path):
    """Raises ValueError unless files can be written under `path` (for library callers)."""
    problem = out_dir_problem(path)
    if problem:
        raise ValueError(problem)
    return path


SCORERS = ("judge", "clip")


def define_engine_flags(workers_help="Ray workers (one model each).",
                        flag_values=flags.FLAGS):
    """Defines --engine (inprocess | ray), --workers and --address for a script whose bulk
    work runs on `sweeps.run_sweep`, checked together while parsing (`sweeps.runner.check_engine`:
    Ray's settings given to the in-process engine are refused)."""
    from keras_sd_interp.sweeps.runner import ENGINES, check_engine

    flags.DEFINE_enum("engine", "inprocess", list(ENGINES), "Where shards run: here, or on "
                      "Ray (pip install -e \".[ray]\").", flag_values=flag_values)
    flags.DEFINE_integer("workers", 1, workers_help, flag_values=flag_values)
    flags.DEFINE_string("address", None, "Ray cluster address (default: a local cluster).",
                        flag_values=flag_values)
    check_int("workers", minimum=1, flag_values=flag_values)

    def check(values):
        try:
            check_engine(values["engine"], values["workers"], values["address"])
        except ValueError as error:
            raise flags.ValidationError(str(error)) from None
        return True

    flags.register_multi_flags_validator(["engine", "workers", "address"], check,
                                         flag_values=flag_values)


def define_scorer_flags():
    """Defines --scorer (auto | judge | clip), --clip_preset, --clip_dir (see `scorer_from_flags`)
    and checks them with --model (define_model_flags first)."""
    from keras_sd_interp.models.clip import PRESETS

    flags.DEFINE_enum("scorer", "auto", ("auto",) + SCORERS, "What scores the images against "
                      "their prompt: judge (the Fashion-MNIST judge, tiny only), clip (CLIP-Score: "
                      "keras-cv's CLIP for sd14, the tiny CLIP for tiny); auto: judge on tiny, "
                      "clip on sd14.")
    flags.DEFINE_enum("clip_preset", "clip-vit-base-patch32", list(PRESETS), "sd14 with "
                      "--scorer=clip: keras-cv's CLIP preset (fetched through keras-cv's preset "
                      "path unless --clip_dir).")
    flags.DEFINE_string("clip_dir", None, "--scorer=clip: a local CLIP folder (sd14: a keras-cv "
                        "preset folder, config.json + model.weights.h5; tiny: a tiny CLIP bundle, "
                        "default the shipped one).")
    check_existing_dir("clip_dir", "CLIP folder")

    def checker(values):
        problem = scorer_problem(values["scorer"], values["model"], values["clip_dir"])
        if problem:
            raise flags.ValidationError(problem)
        return True

    flags.register_multi_flags_validator(["scorer", "model", "clip_dir"], checker)


def scorer_problem(scorer, model, clip_dir=None):
    """None, or why --scorer (auto | judge | clip) with --clip_dir cannot score --model: the
    judge off tiny, a --clip_dir the judge would ignore, or a --clip_dir without its CLIP's
    files (sd14: a keras-cv preset folder; tiny: a tiny CLIP bundle); reads files only."""
    name = scorer if scorer != "auto" else ("judge" if model == "tiny" else "clip")
    if name == "judge" and model != "tiny":
        return (f"--scorer=judge reads Fashion-MNIST items: it scores --model=tiny only; for "
                f"--model={model} use --scorer=clip")
    if clip_dir and name == "judge":
        return (f"--clip_dir={clip_dir} is for --scorer=clip; the judge (--scorer={scorer}) "
                "would ignore it")
    if clip_dir and os.path.isdir(clip_dir):
        try:
            if model == "tiny":
                from keras_sd_interp.models.tiny_clip import read_clip_record

                read_clip_record(clip_dir)
            else:
                from keras_sd_interp.models.clip import check_preset_folder

                check_preset_folder(clip_dir)
        except FileNotFoundError as error:
            return f"--clip_dir={clip_dir}: {error}"
    return None


def scorer_name(flag_values):
    """--scorer with auto resolved: "judge" on tiny, "clip" otherwise."""
    if flag_values.scorer != "auto":
        return flag_values.scorer
    return "judge" if flag_values.model == "tiny" else "clip"


def scorer_from_flags(flag_values, pipe):
    """The `score(images, texts) -> (n,)` scorer the flags name, for `pipe` (its tokenizer is
    CLIP's BPE on sd14). With --random_weights on sd14: a small random keras-cv CLIP."""
    from keras_sd_interp import scoring

    if scorer_name(flag_values) == "judge":
        from keras_sd_interp.judge import load_judge

        return scoring.JudgeScorer(load_judge())
    if flag_values.model == "tiny":
        if flag_values.clip_dir:
            return scoring.tiny_clip_scorer(flag_values.clip_dir)
        return scoring.tiny_clip_scorer()
    return scoring.sd14_clip_scorer(pipe.tokenizer, flag_values.clip_preset,
                                    flag_values.clip_dir, flag_values.random_weights)


def check_clip_reachable(model, scorer, clip_preset, clip_dir=None, random_weights=False):
    """sd14 CLIP-Score from a keras-cv preset (no --clip_dir, real weights): its config.json is
    fetched now (small, cached), so an offline machine hears it before the SD v1.4 load rather
    than after. Raises FileNotFoundError naming the preset and --clip_dir."""
    if scorer != "clip" or model == "tiny" or clip_dir or random_weights:
        return
    from keras_sd_interp.models.clip import fetch_preset_config

    fetch_preset_config(clip_preset)
