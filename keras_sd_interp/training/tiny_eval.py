"""Does the tiny model draw what it is asked? The Fashion-MNIST judge scores each item cell.

For two-item prompts the judge classifies the left and right cells of each generated image;
a cell counts when its class is the one the prompt names there. Single-item prompts are scored
on the middle cell, and unconditional samples (empty prompt) against the same classes as the
pairs, as the floor (about 10% by chance). As the ceiling, `reference_accuracy` scores real
test-set compositions of the same class pairs, as they are and after the autoencoder.
"""

import numpy as np

from keras_sd_interp.data import compositions


def balanced_pairs(num_per_class=20, seed=0):
    """Left and right class lists (10 * num_per_class each): every class num_per_class times
    on each side, paired by a seeded shuffle."""
    left = np.repeat(np.arange(10), num_per_class)
    right = np.random.default_rng(seed).permutation(left)
    return left, right


def pair_cell_hits(judge, images, left, right):
    """Judge verdicts for two-item images uint8 (N, 32, 64[, 1]): (left hits (N,), right hits
    (N,)), booleans, True where the cell's judged class is the prompted one."""
    from keras_sd_interp.judge import predict_classes

    image_left, image_right = compositions.halves(images)
    return (predict_classes(judge, image_left)[0] == left,
            predict_classes(judge, image_right)[0] == right)


def generate(pipe, prompts, num_steps, guidance, seed, batch_size=100):
    """Images uint8 (len(prompts), H, W, 1) for `prompts`, in batches with seeds seed, seed+1..."""
    images = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start:start + batch_size]
        images.append(pipe.generate_image(
            pipe.encode_prompts(chunk), batch_size=len(chunk), num_steps=num_steps,
            unconditional_guidance_scale=guidance, seed=seed + start // batch_size,
        ))
    return np.concatenate(images)


def prompt_accuracy(pipe, judge, num_per_class=20, num_steps=25, guidance=5.0, seed=0):
    """Share of item cells the judge assigns to the prompted class.

    Returns:
        scores: dict with "pairs" (share over 2 * 10 * num_per_class cells), "pairs_left",
            "pairs_right", "pairs_per_class", "singles" (10 * num_per_class middles),
            "unconditional" (the floor), and the settings used;
        pair_images: uint8 (10 * num_per_class, H, W, 1), the generated two-item images.
    """
    from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
    from keras_sd_interp.judge import predict_classes

    left, right = balanced_pairs(num_per_class, seed)
    pair_prompts = [compositions.pair_caption(a, b) for a, b in zip(left, right)]
    single_prompts = [compositions.single_caption(c) for c in left]

    pairs = generate(pipe, pair_prompts, num_steps, guidance, seed)
    left_hits, right_hits = pair_cell_hits(judge, pairs, left, right)
    singles = generate(pipe, single_prompts, num_steps, guidance, seed + 1000)
    single_hits = predict_classes(judge, compositions.middle(singles))[0] == left
    unconditional = generate(pipe, [""] * len(left), num_steps, guidance, seed + 2000)
    uncond_hits = np.concatenate(pair_cell_hits(judge, unconditional, left, right))
    per_class = {
        CLASS_NAMES[c]: float(np.mean(np.concatenate([left_hits[left == c],
                                                      right_hits[right == c]])))
        for c in range(10)
    }
    return {
        "pairs": float(np.mean(np.concatenate([left_hits, right_hits]))),
        "pairs_left": float(np.mean(left_hits)),
        "pairs_right": float(np.mean(right_hits)),
        "singles": float(np.mean(single_hits)),
        "unconditional": float(np.mean(uncond_hits)),
        "pairs_per_class": per_class,
        "num_images_each": int(len(left)),
        "num_steps": num_steps,
        "guidance": guidance,
        "seed": seed,
    }, pairs


def reference_accuracy(pipe, judge, test_images, test_labels, num_per_class=20, seed=0):
    """The judge on real compositions of the same balanced class pairs: what a generator that
    drew real test items would score, before and after the pipeline's autoencoder.

    Args:
        test_images, test_labels: real Fashion-MNIST items, uint8 (N, 28, 28) and int (N,).

    Returns:
        {"real": share of cells right on the raw compositions,
         "autoencoded": the same after image_encoder -> decoder}.
    """
    from keras_sd_interp.data.fashion_mnist import to_model_range
    from keras_sd_interp.data.pixels import to_uint8

    rng = np.random.default_rng(seed)
    left, right = balanced_pairs(num_per_class, seed)

    def items_of(classes):
        return test_images[[rng.choice(np.flatnonzero(test_labels == c)) for c in classes]]

    real = compositions.compose_pairs(items_of(left), items_of(right))
    latents = pipe.image_encoder.predict(to_model_range(real), verbose=0)
    autoencoded = to_uint8(pipe.decoder.predict(latents, verbose=0))

    def cell_accuracy(images):
        return float(np.mean(np.concatenate(pair_cell_hits(judge, images, left, right))))

    return {"real": cell_accuracy(real), "autoencoded": cell_accuracy(autoencoded)}


def evaluate(pipe, judge, test_images, test_labels, num_per_class=20, num_steps=25,
             guidance=5.0, seed=0):
    """`prompt_accuracy` with the real reference (`reference_accuracy`) under "reference".

    Returns (scores dict, pair images uint8 (n, 32, 64, 1))."""
    scores, pair_images = prompt_accuracy(pipe, judge, num_per_class, num_steps, guidance, seed)
    scores["reference"] = reference_accuracy(pipe, judge, test_images, test_labels,
                                             num_per_class, seed)
    return scores, pair_images
