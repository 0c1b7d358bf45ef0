"""What causal tracing costs on SD v1.4 (random weights; the cost does not depend on them):
seconds per restored component (K restorations in one batched generation, warm and cold) against
one plain generation, and CLIP-Score images/s with a clip-vit-base-patch32-sized keras-cv CLIP.

    python benchmarks/causal_trace_sd14_bench.py --weights_dir=DIR   # DIR: CLIP's BPE file

Writes figures/causal_trace/sd14_bench.json.
"""

import time

import numpy as np
from absl import app
from absl import flags

flags.DEFINE_string("weights_dir", None, "Folder with bpe_simple_vocab_16e6.txt.gz.")
flags.DEFINE_integer("size", 256, "Image height and width.")
flags.DEFINE_integer("num_components", 4, "K, the U-Net components restored in one batch.")
flags.DEFINE_integer("num_steps", 1, "DDIM steps.")
flags.DEFINE_integer("clip_images", 16, "Images per CLIP-Score timing.")
flags.DEFINE_string("out", "figures/causal_trace/sd14_bench.json", "Where to write.")
FLAGS = flags.FLAGS
PROMPT, SUBJECT = "a photo of a bottle in a room", "bottle"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv):
    del argv
    from keras_sd_interp import io
    from keras_sd_interp.attribution import causal_trace as ct
    from keras_sd_interp.lens.components import unet_components
    from keras_sd_interp.models import clip as clip_models
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.scoring import clip as clip_scoring

    pipe = load_pipeline("sd14", FLAGS.size, FLAGS.size, weights_dir=FLAGS.weights_dir,
                         random_weights=True)
    components = unet_components(pipe)[::70 // FLAGS.num_components][:FLAGS.num_components]
    noise = pipe.sampler.initial_noise(1, 0).numpy()
    tokens = ct.subject_tokens(pipe, [(PROMPT, SUBJECT)])[0]
    clean, _ = ct.clean_run(pipe, PROMPT, noise, components, FLAGS.num_steps, 7.5)
    corruption = ct.Corruption()
    corruption.set((1, 77, 768), tokens, 0.1, seed=0)

    def restore():
        return ct.restored_images(pipe, PROMPT, noise, clean, corruption,
                                  [[c] for c in components], FLAGS.num_steps, 7.5)

    def plain():
        return ct.restored_images(pipe, PROMPT, noise, clean, corruption, [[]],
                                  FLAGS.num_steps, 7.5)

    cold, _ = timed(restore)
    warm, images = timed(restore)
    plain()  # its compiled step traced
    plain_warm, _ = timed(plain)
    k = len(components)
    scorer = clip_scoring.scorer_for_clip(
        clip_models.build_clip(clip_models.VIT_B32),
        clip_scoring.bpe_tokenize(pipe.tokenizer), clip_scoring.clip_preprocess(224))
    batch = np.repeat(images[:1], FLAGS.clip_images, axis=0)
    clip_cold, _ = timed(lambda: scorer(batch, PROMPT))
    clip_warm, _ = timed(lambda: scorer(batch, PROMPT))
    record = {"size": FLAGS.size, "num_steps": FLAGS.num_steps, "components": components,
              "seconds_per_restored_component": {"cold": cold / k, "warm": warm / k},
              "plain_generation_seconds": plain_warm,
              "restored_component_over_plain_generation": warm / k / plain_warm,
              "clip_score": {"config": "clip-vit-base-patch32 sizes, random weights",
                             "images": FLAGS.clip_images, "cold_seconds": clip_cold,
                             "images_per_second": FLAGS.clip_images / clip_warm},
              "clip_seconds_per_image_over_plain_generation":
                  clip_warm / FLAGS.clip_images / plain_warm}
    io.save_json(FLAGS.out, record)
    print(record)


if __name__ == "__main__":
    app.run(main)
