"""Causal tracing of the U-Net's and the text encoder's components (Basu et al., ICLR 2024).

    python scripts/causal_trace.py --cases="a sneaker and a bag:sneaker" --seeds=0,1,2,3
    python scripts/causal_trace.py --model=sd14 --weights_dir=DIR \
        --prompt="a photo of a bottle in a room" --subject=bottle

The subject (any word or phrase of the prompt) is corrupted at the text embeddings; each
component's clean output is restored in turn; the indirect effect is the scorer's score of the
restored image against the prompt minus the corrupted one's (--scorer: the judge on tiny,
CLIP-Score on either). Writes causal_trace.json, unet_effect.png and text_effect.png under
--output_dir. With four or more seeds, also the rank stability: Spearman correlation of the
component effects measured on the first and the second half of the seeds.
"""

from absl import app
from absl import flags

from keras_sd_interp import cli
from keras_sd_interp.cli import causal_trace as checks
from keras_sd_interp.models import bundled

cli.define_model_flags(mini=True)
cli.define_scorer_flags()
flags.DEFINE_list("cases", ["a sneaker and a bag:sneaker", "a dress and a sandal:dress",
                            "a bag and a coat:bag"],
                  "prompt:subject pairs; the subject is the word or phrase whose tokens are "
                  "corrupted (keep its position the same in every case: the text map averages by "
                  "position). Ignored when --prompt is given.")
flags.DEFINE_string("prompt", None, "One prompt (with --subject), instead of --cases.")
flags.DEFINE_string("subject", None, "The word or phrase of --prompt to corrupt.")
flags.DEFINE_list("seeds", ["0", "1", "2", "3"], "Initial-latent seeds.")
flags.DEFINE_float("noise_scale", 3.0, "Corruption std, a multiple of the embeddings' std.")
flags.DEFINE_integer("num_steps", 10, "DDIM steps.")
flags.DEFINE_float("guidance", 5.0, "Classifier-free guidance scale.")
flags.DEFINE_string("step_range", None, "Restore only at steps start:stop (0 = the noisiest "
                    "step; default: every step).")
flags.DEFINE_integer("chunk_size", 36, "Restorations per batched generation.")
flags.DEFINE_enum("parts", "both", ["unet", "text", "both"], "Which components to trace.")
flags.DEFINE_list("components", [], "Trace only these components (names or globs, e.g. "
                  "'*.attn2,text.layer_0.*'; default: every component of --parts).")
flags.DEFINE_enum("text_tokens", "auto", ["auto", "prompt", "all"], "Tokens whose text "
                  "components are traced: prompt (start through end token), all (the padded "
                  "row); auto: all on tiny (8 tokens), prompt on sd14 (of 77).")
flags.DEFINE_string("output_dir", "figures/causal_trace", "Where to write.")
flags.DEFINE_string("bundle_dir", None, "tiny only: a bundle written by scripts/train_tiny.py "
                    "to trace instead of the shipped one.")
flags.register_validator("bundle_dir", lambda path: path is None or
                         bundled.bundle_dir_checker()(path))
FLAGS = flags.FLAGS
checks.register_checks()


def main(argv):
    del argv
    cases = checks.cases_from_flags(FLAGS)
    seeds = [int(s) for s in FLAGS.seeds]
    steps = checks.parse_step_range(FLAGS.step_range, FLAGS.num_steps)

    import numpy as np

    from keras_sd_interp.attribution import causal_trace as ct
    from keras_sd_interp.lens.components import text_components, unet_components
    from keras_sd_interp.reports.causal_trace import write_causal_trace

    try:  # offline, a preset CLIP fails here, before the SD v1.4 load
        cli.check_clip_reachable(FLAGS.model, cli.scorer_name(FLAGS), FLAGS.clip_preset,
                                 FLAGS.clip_dir, FLAGS.random_weights)
    except FileNotFoundError as error:
        raise app.UsageError(str(error)) from None
    pipe = cli.pipeline_from_flags(FLAGS)
    ct.subject_tokens(pipe, cases)  # the tokenizer alone: a bad subject stops before any model
    which = FLAGS.text_tokens if FLAGS.text_tokens != "auto" else (
        "all" if FLAGS.model == "tiny" else "prompt")
    tokens = ct.text_tokens(pipe, [prompt for prompt, _ in cases], which)
    scorer = cli.scorer_from_flags(FLAGS, pipe)
    components = []
    if FLAGS.parts in ("unet", "both"):
        components += unet_components(pipe)
    if FLAGS.parts in ("text", "both"):
        components += text_components(pipe, tokens)
    components = ct.select_components(components, FLAGS.components)
    result = ct.causal_trace(pipe, {cli.scorer_name(FLAGS): scorer}, cases, components, seeds,
                             FLAGS.noise_scale, FLAGS.num_steps, FLAGS.guidance, steps=steps,
                             chunk_size=FLAGS.chunk_size)
    stability = ct.seed_split_stability(result)
    for part in ("all", "unet", "text"):
        if stability and part in stability:
            print(f"rank stability of {part} components (Spearman, seeds {stability['seeds_a']} "
                  f"vs {stability['seeds_b']}): {stability[part]['spearman']:.3f} "
                  f"(p={stability[part]['p_value']:.2g})")
    labels = ct.token_labels(pipe, *cases[0])  # by position
    paths = write_causal_trace(result, FLAGS.output_dir, labels,
                               pipe.text_encoder.num_text_layers, stability)
    order = np.argsort(-np.asarray(result["effect"]))
    print(f"scorer {cli.scorer_name(FLAGS)}: clean {np.mean(result['clean']):.3f}  "
          f"corrupted {np.mean(result['corrupted']):.3f}")
    for i in order[:8]:
        print(f"{result['components'][i]:32s} {result['effect'][i]:+.3f}")
    for key, path in paths.items():
        print(f"wrote {path}")


if __name__ == "__main__":
    app.run(main)
