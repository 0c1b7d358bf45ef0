"""Word maps of two tiny bundles side by side: the same prompts and seeds, published DAAM.

    python benchmarks/tiny_word_maps.py --bundle_dir=candidates/tiny_clip_unet

For each prompt "a X and a Y" (--pairs), one row per bundle (the shipped one first): the image,
then the DAAM map of X and of Y over it (default layers, all heads). Writes --out.
"""

import os

from absl import app
from absl import flags

flags.DEFINE_string("bundle_dir", "candidates/tiny_clip_unet", "The bundle to compare with the "
                    "shipped one.")
flags.DEFINE_list("pairs", ["sneaker:bag", "dress:sandal", "bag:coat", "trouser:boot"],
                  "X:Y item pairs.")
flags.DEFINE_integer("num_steps", 25, "DDIM steps.")
flags.DEFINE_integer("seed", 0, "Noise seed (the same for both bundles).")
flags.DEFINE_string("out", "figures/tiny/word_maps_shipped_vs_candidate.png", "Where to write.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from keras_sd_interp.attribution import daam
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.reports.daam import save_comparison

    pairs = [pair.split(":") for pair in FLAGS.pairs]
    prompts = [f"a {x} and a {y}" for x, y in pairs]
    rows = {}
    for name, bundle in (("shipped", None), ("candidate", FLAGS.bundle_dir)):
        pipe = load_pipeline("tiny", bundle_dir=bundle)
        with daam.trace(pipe) as tc:
            images = pipe.sampler.generate(prompts, num_steps=FLAGS.num_steps,
                                           unconditional_guidance_scale=5.0,
                                           seed=FLAGS.seed).uint8()
        for i, words in enumerate(pairs):
            rows[(i, name)] = (f"{name}: {prompts[i]}", images[i], tc.heat_maps(words, image=i))
    ordered = [rows[(i, name)] for i in range(len(pairs)) for name in ("shipped", "candidate")]
    save_comparison(FLAGS.out, ordered, f"published DAAM, seed {FLAGS.seed}: shipped tiny vs "
                    f"{FLAGS.bundle_dir}")
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
