"""DAAM heat maps: which part of the image each word of the prompt attends to.

    python scripts/daam.py --prompt="a sneaker and a bag" --words=sneaker,bag
    python scripts/daam.py --prompt="a dress and a boot" --prompt="a bag" --per_step
    python scripts/daam.py --prompt="a sneaker and a bag" --text_rollout   # *_rollout.png
    python scripts/daam.py --model=sd14 --weights_dir=/data/sd14 --num_steps=15 --tau=0.05 \
        --prompt="a smiling, red cat chewing gum" --words=cat,gum

One traced generation for all prompts; per prompt and word: an overlay with the tau mask,
per-layer and per-head small multiples, a GIF over steps (--per_step), and a grid of all words,
in --out_dir (default figures/daam). Flags are checked before any model is built.
"""

import os

from absl import app
from absl import flags

flags.DEFINE_enum("model", "tiny", ["tiny", "sd14"], "The bundled small model or SD v1.4.")
flags.DEFINE_string("weights_dir", None, "sd14: folder with keras-cv's .h5 files and the BPE "
                    "vocabulary (default: download).")
flags.DEFINE_multi_string("prompt", ["a sneaker and a bag"], "Prompt (repeat for a batch).")
flags.DEFINE_list("words", [], "Words to map (default: every word of each prompt). Each word "
                  "is mapped in the prompts that contain it.")
flags.DEFINE_integer("num_steps", 25, "DDIM steps.")
flags.DEFINE_float("guidance", 5.0, "Classifier-free guidance scale.")
flags.DEFINE_integer("seed", 0, "Noise seed.")
flags.DEFINE_float("tau", 0.4, "Mask threshold on the min-max-normalised map, in [0, 1].")
flags.DEFINE_list("layers", [], "Spatial transformer indices 0..15, e.g. 0-5,13 (default: all "
                  "but those at 1/8 of the latent, as DAAM).")
flags.DEFINE_list("heads", [], "Head indices (default: all).")
flags.DEFINE_list("steps", [], "Step indices to record, e.g. 0-9 (default: all).")
flags.DEFINE_bool("per_step", False, "Keep every step: also write a GIF per word.")
flags.DEFINE_bool("text_rollout", False, "Also give each word the maps of the later tokens that "
                  "carry it through the causal text encoder (attention rollout); files end in "
                  "_rollout. Default: DAAM as published.")
flags.DEFINE_string("out_dir", os.path.join("figures", "daam"), "Output folder.")
FLAGS = flags.FLAGS


def parse_request():
    """Checks every flag before any model is built; app.UsageError names the bad value."""
    from keras_sd_interp.cli import parse_numbers
    from keras_sd_interp.cli.daam import check_request

    try:
        layers = parse_numbers(FLAGS.layers) or None
        heads = parse_numbers(FLAGS.heads) or None
        steps = parse_numbers(FLAGS.steps) or None
        check_request(FLAGS.model, FLAGS.prompt, FLAGS.words, layers, heads, FLAGS.tau)
        if steps is not None and max(steps) >= FLAGS.num_steps:
            raise ValueError(f"step {max(steps)} out of range: steps are 0..{FLAGS.num_steps - 1}"
                             f" (--num_steps={FLAGS.num_steps})")
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    return layers, heads, steps


def main(argv):
    del argv
    layers, heads, steps = parse_request()
    from keras_sd_interp.attribution import daam
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.reports import daam as report
    from keras_sd_interp.reports.paths import unique_names

    pipe = load_pipeline(FLAGS.model, weights_dir=FLAGS.weights_dir)
    with daam.trace(pipe, per_step=FLAGS.per_step, steps=steps,
                    text_rollout=FLAGS.text_rollout) as tc:
        pipe.sampler.generate(FLAGS.prompt, num_steps=FLAGS.num_steps,
                              unconditional_guidance_scale=FLAGS.guidance, seed=FLAGS.seed,
                              progress=True)
    images = tc.generation.uint8()
    names = unique_names(tc.prompts, "unconditional")  # a repeated prompt gets its own files
    for index, prompt in enumerate(tc.prompts):
        words = [w for w in FLAGS.words if w.lower() in daam.prompt_words(prompt)] \
            if FLAGS.words else None
        if words == []:
            continue
        maps = tc.compute_heat_maps(index, words, layers=layers, heads=heads)
        frames = {word: tc.per_step(word, index, layers=layers, heads=heads)[0]
                  for word in maps.words} if FLAGS.per_step else None
        paths = report.write_image_report(maps, images[index], FLAGS.out_dir, FLAGS.seed,
                                          FLAGS.tau, frames, names[index])
        print(f"{prompt!r}: {len(paths)} files, e.g. {paths[-1]}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
