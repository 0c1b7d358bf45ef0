"""Contrastive training of the tiny CLIP on captioned Fashion-MNIST compositions.

As CLIP: a batch of (image, caption) pairs, unit-norm embeddings, logits = exp(t) * cosine with
a learned temperature t (keras-cv's `clip_head.logit_scale`, clipped at log(100) as CLIP does),
symmetric cross-entropy (image -> caption and caption -> image). One change for this data: the
batch holds many captions of the same image content (110 contents in all, and up to three
wordings of a pair), so every caption of the same content counts as a positive (the target
row is spread evenly over them) instead of being pushed away as a false negative.

Evaluation (`retrieval_accuracy`): held-out compositions of the test split; each image's top-1
caption among all 110 captions of one wording (100 ordered pairs + 10 singles) must be its own.
"""

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from keras_sd_interp.data import compositions
from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
from keras_sd_interp.models.tiny_clip import (TinyCLIPConfig, build_tiny_clip, clip_tokenizer,
                                              clip_tokens, image_embeddings, text_embeddings,
                                              to_clip_images)
from keras_sd_interp.training.run_settings import check_run_settings

MAX_LOGIT_SCALE = float(np.log(100.0))


class TinyCLIPTrainer:
    """The tiny CLIP, its optimizer and checkpoints in `run_dir` (a rerun resumes).

    Args:
        run_dir: checkpoint folder; `settings` are checked against the ones it started with.
        images, labels: Fashion-MNIST training items, uint8 (N, 28, 28) and int (N,).
        config: TinyCLIPConfig.
        seed: seeds Keras and the batch sampler (batch k is drawn from (seed, k)).
        batch_size, steps, learning_rate, warmup_steps: AdamW with linear warmup, then cosine
            decay to 0 at `steps`.
        captions: caption style of `data.compositions` ("spatial" or "plain").
        settings: the script's flags that define the run (default: the arguments above).
    """

    def __init__(self, run_dir, images, labels, config=TinyCLIPConfig(), seed=0, batch_size=256,
                 steps=3000, learning_rate=1e-3, warmup_steps=200, captions="spatial",
                 settings=None):
        compositions.check_caption_style(captions)
        check_run_settings(run_dir, settings or dict(
            seed=seed, batch_size=batch_size, steps=steps, learning_rate=learning_rate,
            warmup_steps=warmup_steps, captions=captions, **dataclasses.asdict(config)))
        keras.utils.set_random_seed(seed)
        self.images, self.labels = images, labels
        self.seed, self.batch_size, self.steps, self.captions = seed, batch_size, steps, captions
        self.clip = build_tiny_clip(config)
        self.tokenizer = clip_tokenizer(config)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, max(steps - warmup_steps, 1), warmup_target=learning_rate,
            warmup_steps=warmup_steps,
        )
        self.optimizer = keras.optimizers.AdamW(schedule, weight_decay=0.05, clipnorm=1.0)
        self.variables = self.clip.trainable_variables
        self.optimizer.build(self.variables)  # slots exist before a restore fills them
        self.step = tf.Variable(0, dtype=tf.int64)
        self.checkpoint = tf.train.Checkpoint(clip=self.clip, optimizer=self.optimizer,
                                              step=self.step)
        self.manager = tf.train.CheckpointManager(self.checkpoint, run_dir, max_to_keep=2)
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()

    def batch(self, step):
        """Batch `step`: images (b, 64, 64, 3), token_ids, padding_mask (b, L), meanings (b,)."""
        rng = np.random.default_rng([self.seed, step])
        images, captions, meanings = compositions.sample_batch(
            self.images, self.labels, rng, self.batch_size, captions=self.captions,
            return_meanings=True,
        )
        token_ids, padding_mask = clip_tokens(self.tokenizer, captions)
        return to_clip_images(images), token_ids, padding_mask, meanings

    @tf.function
    def _train_step(self, images, token_ids, padding_mask, meanings):
        with tf.GradientTape() as tape:
            loss, accuracy = contrastive_loss(self.clip, images, token_ids, padding_mask,
                                              meanings, training=True)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, self.variables), self.variables))
        scale = self.clip.clip_head.logit_scale
        scale.assign(tf.clip_by_value(scale, 0.0, MAX_LOGIT_SCALE))
        self.step.assign_add(1)
        return loss, accuracy

    def train(self, max_minutes=None, checkpoint_every=250):
        """Trains up to `steps` in all (or for `max_minutes`); returns the losses of this run
        (list of floats) and the seconds per step."""
        start, losses = time.time(), []
        with tqdm(total=self.steps, initial=int(self.step), desc="tiny CLIP") as bar:
            while int(self.step) < self.steps:
                loss, accuracy = self._train_step(*map(tf.constant, self.batch(int(self.step))))
                losses.append(float(loss))
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}",
                                batch_top1=f"{float(accuracy):.2f}",
                                temperature=f"{float(tf.exp(-self.clip.clip_head.logit_scale)):.3f}")
                if int(self.step) % checkpoint_every == 0:
                    self.manager.save()
                if max_minutes is not None and time.time() - start > 60 * max_minutes:
                    break
        self.manager.save()
        return losses, (time.time() - start) / max(len(losses), 1)


def contrastive_loss(clip, images, token_ids, padding_mask, meanings, training=False):
    """Symmetric InfoNCE with every same-meaning caption a positive.

    Args: images (b, R, R, 3); token_ids, padding_mask (b, L); meanings (b,) int (what each
    image shows, `compositions.sample_batch(..., return_meanings=True)`).
    Returns: the loss (scalar) and the batch's image -> caption top-1 accuracy (a hit when the
    best caption has the image's meaning).
    """
    image_emb = tf.math.l2_normalize(clip.image_encoder(images, training=training), axis=-1)
    text_emb = tf.math.l2_normalize(
        clip.text_encoder(token_ids, attention_mask=padding_mask, training=training), axis=-1)
    logits = tf.exp(clip.clip_head.logit_scale) * tf.matmul(image_emb, text_emb, transpose_b=True)
    same = tf.cast(tf.equal(meanings[:, None], meanings[None, :]), tf.float32)
    targets = same / tf.reduce_sum(same, axis=1, keepdims=True)  # symmetric rows and columns
    loss = 0.5 * (tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(targets, logits))
                  + tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
                      targets, tf.transpose(logits))))
    best = tf.argmax(logits, axis=1)
    accuracy = tf.reduce_mean(tf.gather_nd(same, tf.stack([tf.range(tf.shape(best)[0],
                                                                    dtype=best.dtype), best], 1)))
    return loss, accuracy


def candidate_captions(form):
    """All 110 captions of one pair wording ("and", "left_right", "right_left" of
    `compositions.PAIR_FORMS`): 100 ordered pairs then 10 singles, and their meanings (110,)."""
    classes = range(len(CLASS_NAMES))
    pairs = [(left, right) for left in classes for right in classes]
    captions = [compositions.PAIR_FORMS[form](left, right) for left, right in pairs]
    captions += [compositions.single_caption(item) for item in classes]
    meanings = [10 * left + right for left, right in pairs] + [100 + item for item in classes]
    return captions, np.array(meanings)


def held_out_compositions(images, labels, num, seed=1):
    """`num` compositions of test-split items (pairs and singles as in training): uint8
    (num, 32, 64) and meanings (num,)."""
    composed, _, meanings = compositions.sample_batch(
        images, labels, np.random.default_rng(seed), num, return_meanings=True)
    return composed, meanings


def retrieval_accuracy(clip, tokenizer, images, meanings, batch_size=500,
                       forms=("and", "left_right", "right_left")):
    """Image -> caption top-1 accuracy among the 110 captions of each wording.

    Args: clip (keras_cv.models.CLIP); tokenizer (WordTokenizer); images uint8 (n, 32, 64);
    meanings (n,); forms: the wordings scored (keys of `compositions.PAIR_FORMS`).
    Returns: dict wording -> accuracy, plus "and_pairs" / "and_singles" (the "and" wording on
    pair images / single images only).
    """
    image_emb = np.concatenate([
        np.asarray(image_embeddings(clip, to_clip_images(images[i:i + batch_size])))
        for i in range(0, len(images), batch_size)
    ])
    result = {}
    for form in forms:
        captions, candidates = candidate_captions(form)
        text_emb = np.asarray(text_embeddings(clip, *clip_tokens(tokenizer, captions)))
        hits = candidates[np.argmax(image_emb @ text_emb.T, axis=1)] == meanings
        result[form] = float(np.mean(hits))
        if form == "and":
            result["and_pairs"] = float(np.mean(hits[meanings < 100]))
            result["and_singles"] = float(np.mean(hits[meanings >= 100]))
    return result


def data_description(style):
    """The training data in words, for the record (style: a `compositions.CAPTION_STYLES` key)."""
    return ("Fashion-MNIST train split (60,000 items), 32x64 compositions padded to 64x64x3: "
            f"75% pairs, 25% singles 'a X'; {compositions.describe_captions(style)} "
            f"(style {style!r})")


def train_tiny_clip(trainer, clip_dir, eval_images, eval_labels, eval_size=2000,
                    max_minutes=None, command=None):
    """Trains (resuming), writes the CLIP to `clip_dir`, evaluates the written (float16) copy
    on `eval_size` held-out compositions of `eval_images` and adds the result to its record.
    Returns the record."""
    from keras_sd_interp.models.tiny_clip import load_tiny_clip, read_clip_record, save_tiny_clip

    losses, seconds_per_step = trainer.train(max_minutes)
    record = {
        "command": command,
        "seed": trainer.seed,
        "data": data_description(trainer.captions),
        "captions": trainer.captions,
        "steps": int(trainer.step),
        "batch_size": trainer.batch_size,
        "loss_first_50_this_run": _mean(losses[:50]),
        "loss_last_50_this_run": _mean(losses[-50:]),
        "seconds_per_step_this_run": round(seconds_per_step, 3) if losses else None,
        "temperature": float(np.exp(-float(trainer.clip.clip_head.logit_scale))),
        "vocabulary": trainer.tokenizer.vocabulary,
        "max_length": trainer.tokenizer.max_length,
    }
    if not losses:  # a finished run rerun: re-export, keeping the last training run's numbers
        try:
            previous = read_clip_record(clip_dir)
        except FileNotFoundError:
            previous = {}
        for key in ("command", "loss_first_50_this_run", "loss_last_50_this_run",
                    "seconds_per_step_this_run"):
            record[key] = previous.get(key, record[key])
    save_tiny_clip(trainer.clip, record, clip_dir)
    images, meanings = held_out_compositions(eval_images, eval_labels, eval_size)
    forms = ["and"] + [form for form in compositions.CAPTION_STYLES[trainer.captions]
                       if form != "and"]
    record["retrieval_top1"] = retrieval_accuracy(load_tiny_clip(clip_dir), trainer.tokenizer,
                                                  images, meanings, forms=forms)
    record["retrieval_protocol"] = (
        f"{eval_size} held-out compositions of Fashion-MNIST test-split items (seed 1, 75% "
        "pairs / 25% singles); for each image the caption of highest cosine among all 110 "
        "captions of one wording (100 ordered pairs + 10 singles 'a X') must have the image's "
        f"classes in its order; one accuracy per wording ({', '.join(map(repr, forms))}), "
        "'and' also split into pair and single images; the float16 weights as written")
    save_tiny_clip(trainer.clip, record, clip_dir)
    return record


def _mean(values):
    return float(np.mean(values)) if values else None
