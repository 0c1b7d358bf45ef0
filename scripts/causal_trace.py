"""Causal tracing of the U-Net's and the text encoder's components (Basu et al., ICLR 2024).

    python scripts/causal_trace.py --cases="a sneaker and a bag:sneaker" --seeds=0,1,2,3

Writes causal_trace.json, unet_effect.png and text_effect.png under --output_dir. With four or
more seeds, also the rank stability: Spearman correlation of the component effects measured on
the first and the second half of the seeds.
"""

from absl import app
from absl import flags

from keras_sd_interp.cli import causal_trace as checks

flags.DEFINE_list("cases", ["a sneaker and a bag:sneaker", "a dress and a sandal:dress",
                            "a bag and a coat:bag"],
                  "prompt:subject pairs; the subject is the class word whose tokens are corrupted "
                  "(keep its position the same in every case: the text map averages by position).")
flags.DEFINE_list("seeds", ["0", "1", "2", "3"], "Initial-latent seeds.")
flags.DEFINE_float("noise_scale", 3.0, "Corruption std, a multiple of the embeddings' std.")
flags.DEFINE_integer("num_steps", 10, "DDIM steps.")
flags.DEFINE_float("guidance", 5.0, "Classifier-free guidance scale.")
flags.DEFINE_string("step_range", None, "Restore only at steps start:stop (0 = the noisiest "
                    "step; default: every step).")
flags.DEFINE_integer("chunk_size", 36, "Restorations per batched generation.")
flags.DEFINE_enum("parts", "both", ["unet", "text", "both"], "Which components to trace.")
flags.DEFINE_enum("model", "tiny", ["tiny"], "Model: tiny (the bundled one; its judge scores "
                  "the images).")
flags.DEFINE_string("output_dir", "figures/causal_trace", "Where to write.")
FLAGS = flags.FLAGS
checks.register_checks()


def main(argv):
    del argv
    cases = checks.parse_cases(FLAGS.cases)
    seeds = [int(s) for s in FLAGS.seeds]
    steps = checks.parse_step_range(FLAGS.step_range, FLAGS.num_steps)

    import numpy as np

    from keras_sd_interp.attribution import causal_trace as ct
    from keras_sd_interp.judge import load_judge
    from keras_sd_interp.lens.components import text_components, unet_components
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.reports.causal_trace import write_causal_trace

    pipe, judge = load_pipeline(FLAGS.model), load_judge()
    tokens = list(range(pipe.tokens([cases[0][0]]).shape[1]))
    components = []
    if FLAGS.parts in ("unet", "both"):
        components += unet_components(pipe)
    if FLAGS.parts in ("text", "both"):
        components += text_components(pipe, tokens)
    result = ct.causal_trace(pipe, judge, cases, components, seeds, FLAGS.noise_scale,
                             FLAGS.num_steps, FLAGS.guidance, steps=steps,
                             chunk_size=FLAGS.chunk_size)
    stability = ct.seed_split_stability(result)
    for part in ("all", "unet", "text"):
        if stability and part in stability:
            print(f"rank stability of {part} components (Spearman, seeds {stability['seeds_a']} "
                  f"vs {stability['seeds_b']}): {stability[part]['spearman']:.3f} "
                  f"(p={stability[part]['p_value']:.2g})")
    labels = ct.token_labels(pipe, *cases[0])
    paths = write_causal_trace(result, FLAGS.output_dir, labels,
                               pipe.text_encoder.num_text_layers, stability)
    order = np.argsort(-np.asarray(result["effect"]))
    print(f"clean {np.mean(result['clean']):.3f}  corrupted {np.mean(result['corrupted']):.3f}")
    for i in order[:8]:
        print(f"{result['components'][i]:32s} {result['effect'][i]:+.3f}")
    for key, path in paths.items():
        print(f"wrote {path}")


if __name__ == "__main__":
    app.run(main)
