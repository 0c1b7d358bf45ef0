"""SAE quality, and whether feature visualizations show what their feature means (tiny).

    python benchmarks/featureviz_sae_bench.py                   # ~15 min on a loaded 2-core CPU

1. SAE on held-out generations (balanced pair prompts, seeds unseen in training): FVU, L0, dead.
2. The judge's accuracy on generations with the SAE spliced in at spatial_transformer_8 (the
   reconstruction replaces the activation at every step) against without, same noise.
3. Understandability: for each class the most selective latent (by the prompted classes of its
   16 strongest (image, position) peaks) and 10 random firing latents; one visualization per
   latent and preset (objective: the latent's encoder pre-activation, at its peak timestep);
   the judge's class of the cell where the feature peaks in the visualization == the latent's
   class? Baseline ceiling: the same on the latent's own top-5 examples.
4. Steps per second: each preset's batched step (median over steps 2..), and the existing paper
   step (`optimize_latents`, batch of the same size) run between them.
Writes figures/featureviz_sae/{results.json, cards.png}.
"""

import time

import numpy as np
from absl import app, flags

flags.DEFINE_string("sae", "keras_sd_interp/assets/sae/tiny_st8.npz", "SAE weights.")
flags.DEFINE_integer("num_per_class", 8, "Held-out pair prompts per class on each side (x10).")
flags.DEFINE_integer("num_splice", 40, "Prompts for the splice accuracy.")
flags.DEFINE_list("presets", ["paper", "lucent", "diffusion"], "Presets measured.")
flags.DEFINE_list("variants", [], "Extra rows: label=preset:key=value:key=value (e.g. "
                  "light=diffusion:tv=0.5:moments_weight=0.05).")
flags.DEFINE_bool("skip_splice", False, "Skip the splice accuracy (variant runs).")
flags.DEFINE_integer("steps", None, "Override every preset's step count (quick runs).")
flags.DEFINE_integer("num_random", 10, "Random firing latents (the control).")
flags.DEFINE_string("output_dir", "figures/featureviz_sae", "Where results go.")
FLAGS = flags.FLAGS
SITE = "spatial_transformer_8"


def judge_share(judge, crops, classes):
    from keras_sd_interp.judge import predict_classes

    predicted = predict_classes(judge, crops)[0]
    return predicted, float(np.mean(predicted == np.asarray(classes)))


def variant_context(pipe, kind, classes, empty, zeros):
    """The context of a variant row (B, tokens, width): empty (the prompt ""), zeros, own (the
    prompt "a X" of each latent's class: the prompt alone draws X, a reference, not a
    visualization), other ("a Y" with Y != the latent's class, seeded: chance by the prompt
    alone is 0), or mean (the mean context of the ten "a X" prompts)."""
    from keras_sd_interp.data.compositions import single_caption

    classes = np.asarray(classes)
    if kind in ("empty", "zeros"):
        return empty if kind == "empty" else zeros
    if kind == "mean":
        ten = np.asarray(pipe.encode_prompts([single_caption(c) for c in range(10)]), np.float32)
        return np.repeat(ten.mean(0, keepdims=True), len(classes), axis=0)
    if kind == "own":
        chosen = classes
    elif kind == "other":
        chosen = (classes + np.random.default_rng(5).integers(1, 10, len(classes))) % 10
    else:
        raise ValueError(f"context={kind!r}: use empty, zeros, own, other or mean")
    return np.asarray(pipe.encode_prompts([single_caption(c) for c in chosen]), np.float32)


def variant_objective(kind, sae, latents, width):
    """The objective of a variant row: pre (the latent's pre-activation, mean over the 2 x 4
    positions), left (mean over the left item cell's columns only) or decoder (the latent's
    decoder direction, mean over positions)."""
    from keras_sd_interp.featureviz import objectives as obj

    if kind in ("pre", "left"):
        return obj.feature_batch(SITE, sae, latents,
                                 columns=(0, width // 2) if kind == "left" else None)[0]
    if kind == "decoder":
        return obj.batch_sum([obj.direction(SITE, sae.W_dec.numpy()[j], batch=i)
                              for i, j in enumerate(latents)])
    raise ValueError(f"objective={kind!r}: use pre, left or decoder")


def main(argv):
    del argv
    from keras_sd_interp import lens
    from keras_sd_interp.data.compositions import pair_caption
    from keras_sd_interp.featureviz import objectives as obj
    from keras_sd_interp.featureviz.decode import decode_to_uint8
    from keras_sd_interp.featureviz.paper import DescentSettings, optimize_latents
    from keras_sd_interp.featureviz.render import VizSettings, denoised_estimate, visualize
    from keras_sd_interp.featureviz.targets import tap_target
    from keras_sd_interp.judge import load_judge
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.reports.sae import write_feature_cards, write_results
    from keras_sd_interp.sae import as_tokens, collect, features, load_sae, understand
    from keras_sd_interp.training.sae import evaluate_sae
    from keras_sd_interp.training.tiny_eval import balanced_pairs, pair_cell_hits

    began = time.time()
    pipe, judge, sae = load_pipeline("tiny"), load_judge(), load_sae(FLAGS.sae)
    unet = pipe.diffusion_model
    left, right = balanced_pairs(FLAGS.num_per_class, seed=1)
    prompts = [pair_caption(a, b) for a, b in zip(left, right)]
    data = collect(pipe, prompts, SITE, seed=1000)
    acts = data["activations"]
    results = {"sae": evaluate_sae(sae, as_tokens(acts)), "num_eval_prompts": len(prompts)}
    print("SAE held out:", results["sae"])

    # 2. splice
    n = FLAGS.num_splice
    hits = {}
    for name, edits in () if FLAGS.skip_splice else (("plain", None), ("sae_spliced", {SITE: features.splice(sae)}),
                        ("identity_edit", {SITE: features.feature_edit(sae, 0, 1.0)})):
        with lens.trace(pipe, edits=edits or {}):
            gen = pipe.sampler.generate(prompts[:n], batch_size=1, num_steps=25,
                                        unconditional_guidance_scale=5.0, seed=7)
        lh, rh = pair_cell_hits(judge, gen.uint8(), left[:n], right[:n])
        hits[name] = float(np.mean(np.concatenate([lh, rh])))
    results["judge_accuracy"] = {**hits, "num_prompts": n}
    print("judge accuracy:", hits)

    # 3. features
    sel = features.class_selectivity(sae, acts, left, right, num_top=16)
    chosen = understand.most_selective(sel)
    chosen = chosen[chosen >= 0]
    randoms = understand.random_firing(sel, FLAGS.num_random, seed=0, exclude=chosen)
    latents = np.concatenate([chosen, randoms]).astype(int)
    classes = sel["class_"][latents]
    peak_t = np.array([features.peak_timestep(sae, acts, data["timesteps"], j) for j in latents])
    kinds = ["selective"] * len(chosen) + ["random"] * len(randoms)
    # top-5 examples, judged on the cell of their peak
    top_share, top_images = [], []
    for j, c in zip(latents, classes):
        top = features.top_examples(sae, acts, j, num=5)
        sides = (top["col"] >= acts.shape[3] // 2).astype(int)
        _, share = judge_share(judge, understand.cells(data["images"][top["image"]], sides),
                               [c] * 5)
        top_share.append(share)
        top_images.append(data["images"][top["image"][:3]])
    top_share = np.array(top_share)

    b = len(latents)
    empty = np.asarray(pipe.encode_prompts([""] * b), np.float32)
    zeros = np.zeros_like(empty)
    objective, _ = obj.feature_batch(SITE, sae, latents)
    per_preset, vis_images, speed = {}, {}, {}
    paper_targets = [tap_target(unet, SITE, int(i % 96)) for i in range(b)]
    paper_step_s = []
    runs = [(p, p, {}) for p in FLAGS.presets]
    for spec in FLAGS.variants:
        label, rest = spec.split("=", 1)
        base, *pairs = rest.split(":")
        runs.append((label, base, dict(pair.split("=") for pair in pairs)))
    width = acts.shape[3]
    for preset, base, extra in runs:
        overrides = {"steps": FLAGS.steps} if FLAGS.steps else {}
        start, objective_now, run_t = None, objective, peak_t
        context = zeros if base == "paper" else empty
        typed, render = {}, "latent"
        for k, v in extra.items():
            if k == "start" and v == "sample":   # unconditional samples as the start latents
                start = np.asarray(pipe.sampler.generate([""] * b, batch_size=1, num_steps=25,
                                                         seed=3).latents, np.float32)
            elif k == "context":
                context = variant_context(pipe, v, classes, empty, zeros)
            elif k == "objective":
                objective_now = variant_objective(v, sae, latents, width)
            elif k == "t":                       # one fixed timestep instead of each peak
                run_t = np.full(b, int(v))
            elif k == "render":                  # x0: decode the U-Net's clean estimate
                render = v
            else:
                kind = type(getattr(VizSettings(), k))
                typed[k] = v in ("1", "true", "True") if kind is bool else kind(v)
        settings = VizSettings.preset(base, **overrides, **typed)
        result = visualize(unet, objective_now, settings, b, timesteps=run_t, context=context,
                           start=start,
                           encoder=pipe.image_encoder if settings.param == "pixel" else None)
        mode = "paper" if base == "paper" else "corrected"
        shown = result.latents if render == "latent" else \
            denoised_estimate(unet, result.latents, run_t, context, seed=settings.seed)
        images = decode_to_uint8(pipe.decoder, shown, mode)
        judge_t = np.full(b, 500) if base == "paper" else run_t
        sides = understand.peak_sides(unet, sae, SITE, shown, latents, judge_t, context)
        predicted, _ = judge_share(judge, understand.cells(images, sides), classes)
        hit = predicted == classes
        per_preset[preset] = {
            "selective": float(hit[:len(chosen)].mean()), "random": float(hit[len(chosen):].mean()),
            "predicted": predicted.tolist(), "objective_start": result.objective[0].tolist(),
            "objective_end": result.objective[-1].tolist(), "steps": settings.steps,
            "settings": {"preset": base, **extra}}
        speed[preset] = float(b / np.median(result.step_seconds[1:]))
        vis_images[preset] = images
        # the existing paper step, between presets (warm after the first call)
        paper = DescentSettings.paper(steps=6)
        optimize_latents(unet, paper_targets, paper, progress=False)
        t0 = time.perf_counter()
        optimize_latents(unet, paper_targets, paper, progress=False)
        paper_step_s.append((time.perf_counter() - t0) / 6)
        print(preset, per_preset[preset]["selective"], per_preset[preset]["random"],
              f"{speed[preset]:.1f} item-steps/s")
    results["understandability"] = {
        "latents": latents.tolist(), "kind": kinds, "class": classes.tolist(),
        "share_of_top16": sel["share"][latents].tolist(), "peak_timestep": peak_t.tolist(),
        "top_examples": {"selective": float(top_share[:len(chosen)].mean()),
                         "random": float(top_share[len(chosen):].mean())},
        "presets": per_preset}
    results["speed_item_steps_per_s"] = {**speed, "paper_step_optimize_latents":
                                         float(b / np.median(paper_step_s)), "batch": b}
    results["seconds"] = round(time.time() - began, 1)
    rows = [list(top_images[i]) + [vis_images[r[0]][i] for r in runs] for i in range(b)]
    write_feature_cards(f"{FLAGS.output_dir}/cards.png", rows, 3 + len(runs))
    write_results(f"{FLAGS.output_dir}/results.json", results)
    print({k: v for k, v in results.items() if k != "understandability"})
    print("top examples:", results["understandability"]["top_examples"])


if __name__ == "__main__":
    app.run(main)
