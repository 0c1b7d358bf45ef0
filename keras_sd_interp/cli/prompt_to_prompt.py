"""scripts/prompt_to_prompt.py's flags as a request, checked before any model is built."""

from keras_sd_interp.cli import prompt_problem
from keras_sd_interp.editing import prompt_to_prompt as p2p
from keras_sd_interp.editing.prompt_to_prompt.local_blend import NORMALIZE as BLEND_NORMALIZE


def parse_bounds(text, what):
    """ "0.8" -> 0.8; "0.2:0.9" -> (0.2, 0.9); "default_=0.8,bag=0.2:0.5" -> a dict."""
    def one(value):
        parts = value.split(":")
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"{what}={text!r}: give a fraction (0.8), a start:end pair "
                             "(0.2:0.9) or word=fraction entries (default_=0.8,bag=0.2:0.5)")
        return numbers[0] if len(numbers) == 1 else tuple(numbers)

    if "=" not in text:
        return one(text)
    entries = dict(entry.split("=", 1) for entry in text.split(",") if entry)
    return {word: one(value) for word, value in entries.items()}


def controller_of(kind, cross, self_steps, reweight_words=(), reweight_values=(),
                  reweight_base="none"):
    """The controller named by the flags (kind: replace | refine | reweight)."""
    cross = parse_bounds(cross, "cross_replace_steps")
    self_steps = parse_bounds(self_steps, "self_replace_steps")
    if kind == "replace":
        return p2p.Replace(cross, self_steps)
    if kind == "refine":
        return p2p.Refine(cross, self_steps)
    bases = {"none": None, "replace": p2p.Replace(), "refine": p2p.Refine()}
    try:
        values = [float(v) for v in reweight_values]
    except ValueError:
        raise ValueError(f"reweight_values={list(reweight_values)}: give numbers") from None
    return p2p.Reweight(cross, self_steps, words=list(reweight_words), values=values,
                        base=bases[reweight_base])


def blend_of(blend_words, threshold, start_blend, normalize="max"):
    """--blend_words as "boot;bag;sneaker" (one entry per prompt, words joined by '+'), or
    None when empty."""
    if not blend_words:
        return None
    entries = [entry.split("+") for entry in blend_words.split(";")]
    return p2p.LocalBlend(entries, threshold, start_blend, normalize=normalize)


def request(flag_values):
    """(source, edits, controller, local_blend) from the flags; ValueError when bad."""
    controller = controller_of(flag_values.controller, flag_values.cross_replace_steps,
                               flag_values.self_replace_steps, flag_values.reweight_words,
                               flag_values.reweight_values, flag_values.reweight_base)
    blend = blend_of(flag_values.blend_words, flag_values.threshold, flag_values.start_blend,
                     getattr(flag_values, "blend_normalize", "max"))
    edits = p2p.check_request(flag_values.source, flag_values.edits, controller, blend,
                              flag_values.num_steps)
    model = getattr(flag_values, "model", "tiny")  # the script's default
    for prompt in [flag_values.source] + list(edits):
        problem = prompt_problem(model, prompt)
        if problem:
            raise ValueError(problem)
    return flag_values.source, edits, controller, blend


def unused_flags_problem(present, controller, blend_words):
    """None, or why flags given on the command line (`present`: their names) would be ignored:
    the blend's --threshold/--start_blend/--blend_normalize without --blend_words, the
    reweight_* flags without --controller=reweight."""
    unused = [name for name in ("threshold", "start_blend", "blend_normalize")
              if name in present and not blend_words]
    if unused:
        return (f"{', '.join('--' + n for n in unused)} set the local blend, which is off without "
                "--blend_words: give --blend_words too, or leave them out")
    unused = [name for name in ("reweight_words", "reweight_values", "reweight_base")
              if name in present and controller != "reweight"]
    if unused:
        return (f"{', '.join('--' + n for n in unused)} are --controller=reweight's; with "
                f"--controller={controller} they would be ignored")
    return None


INVERSIONS = ("null_text", "ddim")


def real_image(flag_values):
    """The real image named by --image (a file) or --fashion_mnist_index (a fixed test
    composition, tiny only) and its caption; (None, None) when neither is set.

    Returns: (uint8 or float array (1, H, W, C), caption or None). Raises ValueError naming the
    bad flag: both set, a missing file, a size or range the model cannot take, an index out of
    range, or --fashion_mnist_index with a model other than tiny."""
    from keras_sd_interp import io
    from keras_sd_interp.editing.prompt_to_prompt.inversion import (IMAGE_CHANNELS,
                                                                    check_image_array)
    from keras_sd_interp.models import DEFAULT_SIZES

    path, index = flag_values.image, flag_values.fashion_mnist_index
    if path and index is not None:
        raise ValueError("--image and --fashion_mnist_index name two images: give one")
    if not path and index is None:
        return None, None
    model = flag_values.model
    if index is not None:
        if model != "tiny":
            raise ValueError(f"--fashion_mnist_index is a tiny composition; --model={model} "
                             "takes --image=PATH")
        from keras_sd_interp.data import compositions, load_fashion_mnist

        images, labels = load_fashion_mnist("test")
        composed, captions, _ = compositions.indexed_pairs(images, labels, [index])
        return composed[..., None], captions[0]
    try:
        array = io.load_image(path, IMAGE_CHANNELS[model])
    except (FileNotFoundError, OSError) as error:
        raise ValueError(f"--image={path!r}: {error}") from None
    check_image_array(array, model, DEFAULT_SIZES[model][:2])
    return array[None] if array.ndim == 3 else array, None
