"""Does CLIP-Score rank the components as the judge does? Causal tracing on tiny once, every
image scored by both (the judge, the reference, and CLIP-Score by the tiny CLIP), then the
Spearman correlation of the two effect vectors and each one's top component.

    python benchmarks/causal_trace_scorers.py      # 3 prompts x 4 seeds, 10 steps, U-Net + text

Writes figures/causal_trace/scorer_agreement.json (both effect vectors, clean / corrupted scores,
Spearman for all / U-Net / text components, the top components).
"""

import time

import numpy as np
from absl import app
from absl import flags

flags.DEFINE_list("cases", ["a sneaker and a bag:sneaker", "a dress and a sandal:dress",
                            "a bag and a coat:bag"], "prompt:subject pairs.")
flags.DEFINE_list("seeds", ["0", "1", "2", "3"], "Initial-latent seeds.")
flags.DEFINE_integer("num_steps", 10, "DDIM steps.")
flags.DEFINE_integer("chunk_size", 36, "Restorations per batched generation.")
flags.DEFINE_enum("parts", "both", ["unet", "text", "both"], "Which components to trace.")
flags.DEFINE_string("out", "figures/causal_trace/scorer_agreement.json", "Where to write.")
FLAGS = flags.FLAGS


def agreement(components, effect_a, effect_b):
    """{"spearman", "p_value", "top_a", "top_b"} over the given component indices."""
    from keras_sd_interp.attribution import causal_trace as ct

    rho, p = ct.rank_stability(effect_a, effect_b)
    return {"spearman": rho, "p_value": p, "top_judge": components[int(np.argmax(effect_a))],
            "top_clip": components[int(np.argmax(effect_b))]}


def main(argv):
    del argv
    from keras_sd_interp import io, scoring
    from keras_sd_interp.attribution import causal_trace as ct
    from keras_sd_interp.cli.causal_trace import parse_cases
    from keras_sd_interp.judge import load_judge
    from keras_sd_interp.lens.components import text_components, unet_components
    from keras_sd_interp.models import load_pipeline

    cases = parse_cases(FLAGS.cases)
    pipe = load_pipeline("tiny")
    components = []
    if FLAGS.parts != "text":
        components += unet_components(pipe)
    if FLAGS.parts != "unet":
        components += text_components(pipe, ct.text_tokens(pipe, [c for c, _ in cases], "all"))
    scorers = {"judge": scoring.JudgeScorer(load_judge()), "clip": scoring.tiny_clip_scorer()}
    start = time.perf_counter()
    result = ct.causal_trace(pipe, scorers, cases, components, [int(s) for s in FLAGS.seeds],
                             num_steps=FLAGS.num_steps, chunk_size=FLAGS.chunk_size)
    seconds = time.perf_counter() - start
    judge, clip = (np.asarray(result["by_scorer"][k]["effect"]) for k in ("judge", "clip"))
    parts = {"all": range(len(components)),
             "unet": [i for i, c in enumerate(components) if not c.startswith("text.")],
             "text": [i for i, c in enumerate(components) if c.startswith("text.")]}
    record = {"cases": cases, "seeds": result["seeds"], "num_steps": FLAGS.num_steps,
              "components": components, "seconds": seconds,
              "scores": {name: {key: np.asarray(part[key]).tolist()
                                for key in ("clean", "corrupted", "effect")}
                         for name, part in result["by_scorer"].items()},
              "agreement": {name: agreement([components[i] for i in index], judge[list(index)],
                                            clip[list(index)])
                            for name, index in parts.items() if len(index) > 2}}
    io.save_json(FLAGS.out, record)
    for name, part in result["by_scorer"].items():
        print(f"{name}: clean {np.mean(part['clean']):.3f} corrupted {np.mean(part['corrupted']):.3f}")
    for name, found in record["agreement"].items():
        print(f"{name}: Spearman {found['spearman']:.3f} (p={found['p_value']:.2g}); top judge "
              f"{found['top_judge']}, top clip {found['top_clip']}")
    print(f"{seconds:.0f} s; wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
