"""Does a deeper tiny CLIP text tower let the papers' DiffQuickFix reach the U-Net? A text-side
probe that needs no U-Net training: for each tiny CLIP, the concept-token-only edit of text
layer 0's attention out-projection (`editing.diffquickfix(..., positions="concept")`), and how
far it moves the context the U-Net reads toward the context of the edited prompt
(`editing.evaluate.context_reach`).

    python benchmarks/dqf_text_probe.py --clip_dirs=keras_sd_interp/assets/tiny_clip,DIR

Per CLIP and concept (all ten; target the class five on, as benchmarks/edit_eval.py; prompts
"a X and a Y", "a Y and a X", "a X" with Y the class three on), the distance left, summed over
tokens (0: the edited context is the target prompt's; 1: nothing moved), and in "a X and a Y"
at the subject's own token (found by the tokenizer) and over the tokens after it (which the
tiny U-Net reads its items from: `docs/tiny_clip.md`). The U-Net never runs: each CLIP's text
tower is put beside `--bundle_dir`'s U-Net (`models.tiny_clip.pipeline_with_text_tower`).
"""

import json
import os
import tempfile

import numpy as np
from absl import app, flags

from keras_sd_interp import editing, io, lens
from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
from keras_sd_interp.editing.evaluate import context_reach
from keras_sd_interp.models.tiny_clip import pipeline_with_text_tower

flags.DEFINE_list("clip_dirs", ["keras_sd_interp/assets/tiny_clip"], "Tiny CLIP folders.")
flags.DEFINE_string("bundle_dir", "candidates/tiny_clip_unet", "A bundle trained under a tiny "
                    "CLIP (its U-Net and autoencoder are carried, never run).")
flags.DEFINE_string("out", "figures/tiny/candidate/dqf_text_probe.json", "Where to write.")
FLAGS = flags.FLAGS


def probe(pipe):
    """{"ratio", "subject", "after"}: (10,) distances left, one per concept."""
    ratio, subject, after = [], [], []
    for i, concept in enumerate(CLASS_NAMES):
        target, other = CLASS_NAMES[(i + 5) % 10], CLASS_NAMES[(i + 3) % 10]
        prompts = [f"a {concept} and a {other}", f"a {other} and a {concept}", f"a {concept}"]
        edit = editing.diffquickfix(pipe, concept, target, positions="concept")
        _, moved, apart = context_reach(pipe, edit, concept, target, prompts)
        last = lens.concept_span(pipe, prompts[0], concept).last
        ratio.append(moved.sum() / apart.sum())
        subject.append(moved[0, last] / apart[0, last])
        after.append(moved[0, last + 1:].sum() / apart[0, last + 1:].sum())
    return {"ratio": ratio, "subject": subject, "after": after}


def main(_):
    records = []
    for clip_dir in FLAGS.clip_dirs:
        with tempfile.TemporaryDirectory() as work_dir:
            pipe = pipeline_with_text_tower(clip_dir, FLAGS.bundle_dir, work_dir)
            result = probe(pipe)
        layers = pipe.record["text_layers"]
        summary = {key: float(np.mean(values)) for key, values in result.items()}
        print(f"{clip_dir} ({layers} text layers): " + ", ".join(
            f"{key} {value:.3f}" for key, value in summary.items()))
        records.append({"clip_dir": clip_dir, "text_layers": layers, "mean": summary,
                        "per_concept": {k: [float(v) for v in vs] for k, vs in result.items()},
                        "concepts": list(CLASS_NAMES)})
    os.makedirs(os.path.dirname(FLAGS.out) or ".", exist_ok=True)
    io.save_json(FLAGS.out, {"command": "python benchmarks/dqf_text_probe.py --clip_dirs="
                             + ",".join(FLAGS.clip_dirs), "clips": records})
    print(json.dumps({"wrote": FLAGS.out}))


if __name__ == "__main__":
    app.run(main)
