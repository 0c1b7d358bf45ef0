"""Does DAAM find the objects? IoU of each item word's tau-mask with the half the judge finds it in.

    python benchmarks/daam_localization.py            # 200 two-item prompts on tiny, ~2-4 min

200 prompts "a X and a Y" (20 per class on each side, the pairing of scripts/eval_tiny.py),
25 DDIM steps, guidance 5, seeds 0, 1, ... per batch of 50. For each item word, the target is
the 32x32 half (or both) whose cell the Fashion-MNIST judge classifies as that word's class;
items the judge finds in neither half are counted and skipped. The mask is the word's DAAM map
min-max normalised and thresholded at tau. Baselines: the uniform map (mask = whole image), a
random single (layer, head) map, and the other word's map. Also: DAAM's mIoU at other taus, each token position's mask against each
half (where a model routes each item: its own word, or, on the tiny model bundled before
issue 21, "and" and the last <end>), every single layer (heads
averaged), every head index (layers averaged) and every (layer, head). The same run also scores
the maps with text rollout (`daam.trace(..., text_rollout=True)`: each word also takes the maps
of the later tokens that carry it through the causal text encoder), under "rollout". Writes
figures/daam/localization.json.
"""

import os
import time

import numpy as np
from absl import app
from absl import flags
from tqdm import tqdm

flags.DEFINE_integer("num_per_class", 20, "Prompts per class on each side (x10 in all).")
flags.DEFINE_integer("num_steps", 25, "DDIM steps.")
flags.DEFINE_float("guidance", 5.0, "Classifier-free guidance scale.")
flags.DEFINE_integer("seed", 0, "Seed of the pairing and the noise (batch b uses seed + b).")
flags.DEFINE_integer("batch_size", 50, "Prompts per traced generation.")
flags.DEFINE_float("tau", 0.4, "Mask threshold on the min-max-normalised map.")
flags.DEFINE_string("out", "figures/daam/localization.json", "Where to write the results.")
flags.DEFINE_string("bundle_dir", None, "A tiny bundle to score instead of the shipped one (e.g. "
                    "a candidate from scripts/train_tiny.py).")
flags.DEFINE_float("silhouette_level", 0.15, "An item's silhouette: its half's pixels above this "
                   "(images in [0, 1]).")
FLAGS = flags.FLAGS
TAUS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def iou(masks, target):
    """masks (..., H, W) bool, target (H, W) bool -> (...) IoU."""
    inter = np.logical_and(masks, target).sum((-2, -1))
    union = np.logical_or(masks, target).sum((-2, -1))
    return inter / np.maximum(union, 1)


def main(argv):
    del argv
    from keras_sd_interp import io
    from keras_sd_interp.attribution import daam
    from keras_sd_interp.data import compositions
    from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
    from keras_sd_interp.judge import load_judge, predict_classes
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.training.tiny_eval import balanced_pairs

    started = time.time()
    pipe, judge = load_pipeline("tiny", bundle_dir=FLAGS.bundle_dir), load_judge()
    left, right = balanced_pairs(FLAGS.num_per_class, FLAGS.seed)
    prompts = [compositions.pair_caption(a, b) for a, b in zip(left, right)]
    height, width = pipe.img_height, pipe.img_width
    halves = np.zeros((2, height, width), bool)
    halves[0, :, :width // 2], halves[1, :, width // 2:] = True, True
    rng = np.random.default_rng(FLAGS.seed)

    rows = []  # one per item word found by the judge
    token_rows = []  # per image: IoU of each token position's mask with the left / right half
    missed = 0
    for b, start in enumerate(tqdm(range(0, len(prompts), FLAGS.batch_size), desc="batches")):
        chunk = prompts[start:start + FLAGS.batch_size]
        with daam.trace(pipe, text_rollout=True) as tc:
            gen = pipe.sampler.generate(chunk, num_steps=FLAGS.num_steps,
                                        unconditional_guidance_scale=FLAGS.guidance,
                                        seed=FLAGS.seed + b)
        images = gen.uint8()
        bright = images[..., 0] / 255.0 > FLAGS.silhouette_level               # (n, H, W)
        cells = compositions.halves(images)
        judged = np.stack([predict_classes(judge, c)[0] for c in cells], 1)  # (n, 2)
        for i in range(len(chunk)):
            classes = (left[start + i], right[start + i])
            words = [CLASS_NAMES[c] for c in classes]
            # (layers, heads, 2 words, H, W) per (layer, head), every layer; DAAM, then rollout
            tc.text_rollout = False
            plain = tc.compute_heat_maps(i, words, layers=range(16))
            maps, layers, heads = plain.maps, plain.layers, plain.heads
            tc.text_rollout = True
            rolled = tc.compute_heat_maps(i, words, layers=range(16)).maps
            default = [layers.index(l) for l in tc.default_layers()]
            global_maps = maps[default].mean((0, 1))                     # (2, H, W)
            rolled_maps = rolled[default].mean((0, 1))
            # every token position (8: <start> a X and a Y <end> <end>) against each half
            summed = [tc.summed(tc.site(l), i) for l in tc.default_layers()]
            tokens = daam.aggregate(summed, tc.latent_hw, tc.image_hw,
                                    [[t] for t in range(summed[0].shape[-1])]).mean((0, 1))
            token_rows.append(iou(daam.mask(tokens, FLAGS.tau)[:, None], halves[None]))
            for side, word in enumerate(words):
                where = [h for h in range(2) if judged[i, h] == classes[side]]
                if not where:
                    missed += 1
                    continue
                target = np.logical_or.reduce([halves[h] for h in where])
                silhouette = np.logical_and(target, bright[i])
                rl, rh = rng.choice(default), rng.integers(len(heads))
                rows.append({
                    # against the item's own pixels, with the maps that merely find its half
                    "silhouette_daam": iou(daam.mask(global_maps[side], FLAGS.tau), silhouette),
                    "silhouette_rollout": iou(daam.mask(rolled_maps[side], FLAGS.tau),
                                              silhouette),
                    "silhouette_correct_half": iou(target, silhouette),
                    "silhouette_uniform": iou(np.ones((height, width), bool), silhouette),
                    "silhouette_other_word": iou(daam.mask(global_maps[1 - side], FLAGS.tau),
                                                 silhouette),
                    "silhouette_daam_by_tau": [iou(daam.mask(global_maps[side], t), silhouette)
                                               for t in TAUS],
                    "daam": iou(daam.mask(global_maps[side], FLAGS.tau), target),
                    "uniform": iou(np.ones((height, width), bool), target),
                    "random_head": iou(daam.mask(maps[rl, rh, side], FLAGS.tau), target),
                    "other_word": iou(daam.mask(global_maps[1 - side], FLAGS.tau), target),
                    "layer": iou(daam.mask(maps[:, :, side].mean(1), FLAGS.tau), target),
                    "head": iou(daam.mask(maps[default][:, :, side].mean(0), FLAGS.tau), target),
                    "layer_head": iou(daam.mask(maps[:, :, side], FLAGS.tau), target),
                    "tau_sweep": [iou(daam.mask(global_maps[side], t), target) for t in TAUS],
                    "rollout": iou(daam.mask(rolled_maps[side], FLAGS.tau), target),
                    "rollout_other_word": iou(daam.mask(rolled_maps[1 - side], FLAGS.tau),
                                              target),
                    "rollout_random_head": iou(daam.mask(rolled[rl, rh, side], FLAGS.tau),
                                               target),
                    "rollout_layer": iou(daam.mask(rolled[:, :, side].mean(1), FLAGS.tau),
                                         target),
                    "rollout_head": iou(daam.mask(rolled[default][:, :, side].mean(0),
                                                  FLAGS.tau), target),
                    "rollout_tau_sweep": [iou(daam.mask(rolled_maps[side], t), target)
                                          for t in TAUS],
                    "side_judged": where,
                    "side_prompted": side,
                })

    def mean(key):
        return np.mean([r[key] for r in rows], axis=0)

    per_layer, per_head, per_pair = mean("layer"), mean("head"), mean("layer_head")
    best_pair = np.unravel_index(np.argmax(per_pair), per_pair.shape)
    rollout_layer, rollout_head = mean("rollout_layer"), mean("rollout_head")
    results = {
        "mIoU": {k: float(mean(k)) for k in ("daam", "uniform", "random_head", "other_word")},
        "rollout": {
            "mIoU": {k: float(mean(f"rollout{s}")) for k, s in (
                ("daam_rollout", ""), ("other_word", "_other_word"),
                ("random_head", "_random_head"))},
            "per_layer": [float(v) for v in rollout_layer],
            "per_head": [float(v) for v in rollout_head],
            "best_layer": {"layer": int(np.argmax(rollout_layer)),
                           "mIoU": float(rollout_layer.max())},
            "best_head": {"head": int(np.argmax(rollout_head)), "mIoU": float(rollout_head.max())},
            "mIoU_by_tau": dict(zip(map(str, TAUS), map(float, mean("rollout_tau_sweep")))),
        },
        "silhouette": {
            "mIoU": {k: float(mean(f"silhouette_{k}")) for k in (
                "daam", "rollout", "correct_half", "uniform", "other_word")},
            "daam_mIoU_by_tau": dict(zip(map(str, TAUS),
                                         map(float, mean("silhouette_daam_by_tau")))),
            "level": FLAGS.silhouette_level,
        },
        "bundle_dir": FLAGS.bundle_dir or "shipped",
        "per_layer": [float(v) for v in per_layer],
        "per_head": [float(v) for v in per_head],
        "best_layer": {"layer": int(np.argmax(per_layer)), "mIoU": float(per_layer.max())},
        "best_head": {"head": int(np.argmax(per_head)), "mIoU": float(per_head.max())},
        "best_layer_head": {"layer": int(best_pair[0]), "head": int(best_pair[1]),
                            "mIoU": float(per_pair.max())},
        "default_layers": tc.default_layers(),
        "daam_mIoU_by_tau": dict(zip(map(str, TAUS), map(float, mean("tau_sweep")))),
        "token_position_mIoU_left_right": {
            f"{t} {name}": [round(float(v), 4) for v in row] for t, (name, row) in enumerate(
                zip(["<start>", "a", "X", "and", "a", "Y"] + ["<end>"] * (len(token_rows[0]) - 6),
                    np.mean(token_rows, 0)))},
        "items_scored": len(rows),
        "items_not_found_by_judge": missed,
        "items_judged_in_other_half": int(sum(r["side_judged"] != [r["side_prompted"]]
                                              for r in rows)),
        "num_prompts": len(prompts), "num_steps": FLAGS.num_steps, "guidance": FLAGS.guidance,
        "seed": FLAGS.seed, "tau": FLAGS.tau, "batch_size": FLAGS.batch_size,
        "seconds": round(time.time() - started, 1),
        "command": "python benchmarks/daam_localization.py",
    }
    io.save_json(FLAGS.out, results)
    print({k: round(v, 3) for k, v in results["mIoU"].items()})
    print("silhouette:", {k: round(v, 3) for k, v in results["silhouette"]["mIoU"].items()})
    print("text rollout:", {k: round(v, 3) for k, v in results["rollout"]["mIoU"].items()},
          "best layer", results["rollout"]["best_layer"], "best head",
          results["rollout"]["best_head"])
    print("best layer", results["best_layer"], "best head", results["best_head"],
          "best (layer, head)", results["best_layer_head"])
    print("scored", len(rows), "not found", missed, f"{results['seconds']} s")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
