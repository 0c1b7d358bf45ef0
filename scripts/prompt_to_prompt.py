"""Prompt-to-prompt: a source prompt and its edits in one batched generation; writes a grid
(a row per seed: the source, then every edit) and the images as .npy.

    python scripts/prompt_to_prompt.py --source="a trouser and a boot" \
        --edits="a trouser and a bag,a trouser and a sneaker" --blend_words="boot;bag;sneaker"
    python scripts/prompt_to_prompt.py --controller=reweight --source="a trouser and a boot" \
        --edits="a trouser and a boot,a trouser and a boot" --reweight_words=boot \
        --reweight_values=0.5,4
    python scripts/prompt_to_prompt.py --fashion_mnist_index=3 --inversion=null_text \
        --edits="a pullover and a bag"         # a real test composition, inverted, then edited
    python scripts/prompt_to_prompt.py --image=real.png --source="a trouser and a boot" \
        --edits="a trouser and a bag" --inversion=ddim
"""

import os

from absl import app
from absl import flags

from keras_sd_interp import cli
from keras_sd_interp.cli import prompt_to_prompt as request_flags

flags.DEFINE_string("source", None, "The source prompt (default 'a trouser and a boot'; with "
                    "--image the image's caption; with --fashion_mnist_index its caption).")
flags.DEFINE_list("edits", ["a trouser and a bag"], "Edited prompts (comma-separated).")
flags.DEFINE_enum("controller", "replace", ["replace", "refine", "reweight"], "Which edit.")
flags.DEFINE_string("cross_replace_steps", "0.8", "A fraction, start:end, or word=fraction "
                    "entries with default_ (e.g. default_=0.8,bag=0.2:0.5).")
flags.DEFINE_string("self_replace_steps", "0.4", "A fraction or start:end.")
flags.DEFINE_list("reweight_words", [], "reweight: the words to weight.")
flags.DEFINE_list("reweight_values", [], "reweight: one value per edited prompt.")
flags.DEFINE_enum("reweight_base", "none", ["none", "replace", "refine"],
                  "reweight: the controller underneath.")
flags.DEFINE_string("blend_words", "", "Local blend: one entry per prompt (source first) "
                    "separated by ';', words of an entry joined by '+'; empty: no blend.")
flags.DEFINE_float("threshold", 0.3, "Local blend threshold.")
flags.DEFINE_float("start_blend", 0.2, "Local blend from this fraction of the steps on.")
flags.DEFINE_enum("blend_normalize", "max", list(request_flags.BLEND_NORMALIZE),
                  "Local blend: maps divided by their maximum (theirs) or scaled to 0..1 "
                  "first (for maps that never fall near 0, e.g. tiny's; "
                  "docs/prompt_to_prompt.md).")
flags.DEFINE_enum("model", "tiny", ["tiny", "sd14"], "Which pipeline.")
flags.DEFINE_string("weights_dir", None, "sd14: directory with keras-cv's .h5 files.")
flags.DEFINE_bool("random_weights", False, "Use random weights (shapes only).")
flags.DEFINE_integer("num_steps", None, "DDIM steps (default: tiny 25, sd14 50).")
flags.DEFINE_float("guidance", None, "Guidance (default: tiny 5, sd14 7.5).")
flags.DEFINE_integer("num_seeds", 2, "Images per prompt (seeds seed, seed+1, ...).")
flags.DEFINE_integer("seed", 0, "First noise seed.")
flags.DEFINE_string("image", None, "A real image to edit (PNG/JPEG or .npy; tiny: 32x64 "
                    "grayscale, sd14: its size, RGB), captioned by --source.")
flags.DEFINE_integer("fashion_mnist_index", None, "tiny: edit real test composition k (items "
                     "2k and 2k+1 of the Fashion-MNIST test split), captioned by the data.")
flags.DEFINE_enum("inversion", "null_text", request_flags.INVERSIONS, "How a real image is "
                  "inverted: null-text inversion, or plain DDIM inversion (the baseline).")
flags.DEFINE_integer("num_inner_steps", 10, "Null-text: Adam updates per step at most.")
flags.DEFINE_string("output_dir", "outputs/prompt_to_prompt", "Where to write.")
FLAGS = flags.FLAGS
cli.check_weights_dir()
cli.check_int("num_steps", 1, 1000, allow_none=True)
cli.check_float("guidance", allow_none=True)
cli.check_int("num_seeds", 1)
cli.check_float("threshold", 0, 1, exclusive_maximum=True)  # masks peak at 1: 1+ blends nothing
cli.check_int("num_inner_steps", 0)
DEFAULT_SOURCE = "a trouser and a boot"
cli.check_out_dir("output_dir")


def _source(values, caption):
    if caption is not None and values["source"] not in (None, caption):
        raise ValueError(f"--fashion_mnist_index={values['fashion_mnist_index']} is captioned "
                         f"{caption!r}: leave --source unset (edits must match its words)")
    return caption or values["source"] or DEFAULT_SOURCE


def _check_request(values):
    from types import SimpleNamespace

    try:
        namespace = SimpleNamespace(**values)
        _, caption = request_flags.real_image(namespace)
        steps = values["num_steps"] or (50 if values["model"] == "sd14" else 25)
        request_flags.request(SimpleNamespace(**dict(values, num_steps=steps,
                                                      source=_source(values, caption))))
    except ValueError as error:
        raise flags.ValidationError(str(error))
    return True


flags.register_multi_flags_validator(
    ["source", "edits", "controller", "cross_replace_steps", "self_replace_steps",
     "reweight_words", "reweight_values", "reweight_base", "blend_words", "threshold",
     "blend_normalize", "start_blend", "num_steps", "model", "image", "fashion_mnist_index"],
    _check_request)


def _check_unused(values):
    present = [name for name in values if FLAGS[name].present]
    problem = request_flags.unused_flags_problem(present, values["controller"],
                                                 values["blend_words"])
    if problem:
        raise flags.ValidationError(problem)
    return True


flags.register_multi_flags_validator(
    ["controller", "blend_words", "threshold", "start_blend", "blend_normalize",
     "reweight_words", "reweight_values", "reweight_base"], _check_unused)


def main(argv):
    del argv
    import numpy as np

    from keras_sd_interp import io
    from keras_sd_interp.editing import prompt_to_prompt as p2p
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.reports.prompt_to_prompt import write_edit_grid

    sd14 = FLAGS.model == "sd14"
    FLAGS.num_steps = FLAGS.num_steps or (50 if sd14 else 25)
    guidance = FLAGS.guidance if FLAGS.guidance is not None else (7.5 if sd14 else 5.0)
    image, caption = request_flags.real_image(FLAGS)
    FLAGS.source = _source(FLAGS.flag_values_dict(), caption)
    source, edits, controller, blend = request_flags.request(FLAGS)
    pipe = load_pipeline(FLAGS.model, weights_dir=FLAGS.weights_dir,
                         random_weights=FLAGS.random_weights)
    if image is None:
        editor = p2p.PromptToPrompt(pipe, source, edits, controller, blend, FLAGS.num_steps,
                                    images_per_prompt=FLAGS.num_seeds)
        seeds = range(FLAGS.seed, FLAGS.seed + FLAGS.num_seeds)
        noise = np.concatenate([pipe.sampler.initial_noise(1, s).numpy() for s in seeds])
        result = editor.generate(diffusion_noise=noise, guidance=guidance, progress=True)
        rows, titles = np.swapaxes(result.images, 0, 1), result.prompts
    else:
        inverted = p2p.invert(pipe, image, source, FLAGS.num_steps, guidance, FLAGS.inversion,
                              FLAGS.num_inner_steps, progress=True)
        editor = p2p.PromptToPrompt(pipe, source, edits, controller, blend, FLAGS.num_steps)
        result = editor.generate(progress=True, **inverted.generate_args())
        psnr = float(p2p.psnr(result.source, inverted.images)[0])
        print(f"{FLAGS.inversion} inversion: reconstruction PSNR {psnr:.2f} dB")
        rows = np.concatenate([inverted.images[None], result.images])[None, :, 0]
        titles = ["real image", f"{FLAGS.inversion} reconstruction ({psnr:.1f} dB)"] + edits
    grid = write_edit_grid(os.path.join(FLAGS.output_dir, "grid.png"), rows, titles)
    io.save_npy(os.path.join(FLAGS.output_dir, "images.npy"), result.images)
    print(f"wrote {grid}")


if __name__ == "__main__":
    app.run(main)
