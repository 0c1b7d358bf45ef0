"""Does a deeper tiny CLIP text tower let the papers' DiffQuickFix reach the U-Net? A text-side
probe that needs no U-Net training: for each tiny CLIP, the concept-token-only edit of text
layer 0's attention out-projection (`editing.diffquickfix(..., positions="concept")`), and how
far it moves the context the U-Net reads toward the context of the edited prompt.

    python benchmarks/dqf_text_probe.py --clip_dirs=keras_sd_interp/assets/tiny_clip,DIR

Per CLIP and concept (all ten; target the class five on, as benchmarks/edit_eval.py; prompts
"a X and a Y", "a Y and a X", "a X" with Y the class three on), the distance ratio

    ||context_edited - context_target|| / ||context_original - context_target||

summed over tokens (0: the edited context is the target prompt's; 1: nothing moved), and per
token of "a X and a Y": the subject's own token, and the tokens after it (which the tiny U-Net
reads its items from: `docs/tiny_clip.md`). The U-Net never runs: each CLIP's text tower is put
into a bundle beside `--bundle_dir`'s U-Net only so that the pipeline and the lens carry it.
"""

import json
import os
import tempfile

import numpy as np
from absl import app, flags

from keras_sd_interp import editing, io
from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
from keras_sd_interp.models import bundled
from keras_sd_interp.models.tiny import TinyPipeline
from keras_sd_interp.models.tiny_clip import load_tiny_clip, text_encoder_from_clip

flags.DEFINE_list("clip_dirs", ["keras_sd_interp/assets/tiny_clip"], "Tiny CLIP folders.")
flags.DEFINE_string("bundle_dir", "candidates/tiny_clip_unet", "A bundle trained under a tiny "
                    "CLIP (its U-Net and autoencoder are carried, never run).")
flags.DEFINE_string("out", "figures/tiny/candidate/dqf_text_probe.json", "Where to write.")
FLAGS = flags.FLAGS


def pipeline_with_text_tower(clip_dir, bundle_dir, work_dir):
    """A TinyPipeline whose text encoder is `clip_dir`'s tower (written as a bundle)."""
    base = TinyPipeline(bundle_dir=bundle_dir)
    encoder = text_encoder_from_clip(load_tiny_clip(clip_dir))
    record = dict(base.record, text_layers=encoder.num_text_layers)
    models = {"unet": base.diffusion_model, "text_encoder": encoder,
              "vae_encoder": base.vae_encoder, "decoder": base.decoder}
    bundled.save_bundle(models, record, work_dir)
    return TinyPipeline(bundle_dir=work_dir)


def probe(pipe):
    """{"ratio": (10,) per concept, "subject": (10,), "after": (10,)} distance ratios."""
    ratio, subject, after = [], [], []
    for i, concept in enumerate(CLASS_NAMES):
        target, other = CLASS_NAMES[(i + 5) % 10], CLASS_NAMES[(i + 3) % 10]
        prompts = [f"a {concept} and a {other}", f"a {other} and a {concept}", f"a {concept}"]
        original = np.asarray(pipe.encode_prompts(prompts))
        wanted = np.asarray(pipe.encode_prompts([p.replace(concept, target) for p in prompts]))
        edit = editing.diffquickfix(pipe, concept, target, positions="concept")
        edit.apply(pipe)
        edited = np.asarray(pipe.encode_prompts(prompts))
        edit.undo(pipe)
        moved = np.linalg.norm(edited - wanted, axis=-1)        # (3, L)
        apart = np.linalg.norm(original - wanted, axis=-1)      # 0 before the subject
        ratio.append(moved.sum() / apart.sum())
        subject.append(moved[0, 2] / apart[0, 2])               # "<start> a X ..."
        after.append(moved[0, 3:].sum() / apart[0, 3:].sum())
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
