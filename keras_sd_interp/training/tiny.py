"""Training the bundled tiny model on captioned Fashion-MNIST compositions.

Two phases, both resumable from the checkpoints in `run_dir`:
1. the autoencoder (reconstruction MSE + a small KL term), then its latent scale (1 / std of
   the latents, keras-cv's 0.18215 for SD);
2. the text encoder and the U-Net jointly, predicting the noise added under SD v1.4's schedule
   (1000 steps, scaled-linear betas 0.00085..0.012: keras-cv's own `_ALPHAS_CUMPROD`), with a
   share of empty captions for classifier-free guidance and an EMA of the weights.

With `text_encoder="clip"` phase 2 trains the U-Net alone under the frozen text tower of a
tiny CLIP (`models/tiny_clip.py`), copied into the rebuilt encoder with sites, on the CLIP's
captions and tokenizer, as Stable Diffusion was trained under CLIP's; `autoencoder_bundle_dir`
reuses a shipped bundle's autoencoder and latent scale instead of phase 1.
"""

import time

import keras
import numpy as np
import tensorflow as tf
from keras_cv.src.models.stable_diffusion.constants import _ALPHAS_CUMPROD
from tqdm import tqdm

from keras_sd_interp.data import compositions
from keras_sd_interp.models import bundled
from keras_sd_interp.models.config import TINY
from keras_sd_interp.models.layers import timestep_embedding
from keras_sd_interp.models.tiny_clip import load_tiny_clip, read_clip_record, text_encoder_from_clip
from keras_sd_interp.models.tiny_text import WordTokenizer, build_text_encoder
from keras_sd_interp.models.tiny_vae import build_decoder, build_vae_encoder
from keras_sd_interp.models.unet import SDUNet
from keras_sd_interp.training.run_settings import check_run_settings

HEIGHT, WIDTH = compositions.HEIGHT, compositions.WIDTH
MAX_LENGTH = 8
TEXT_LAYERS = 2
TEXT_HEADS = 4
KL_WEIGHT = 1e-4
TEXT_ENCODERS = ("joint", "clip")


class TinyTrainer:
    """Holds the tiny model's parts, their optimizers, EMA weights and checkpoints.

    Args:
        run_dir: folder for checkpoints (a rerun with the same folder resumes).
        images, labels: Fashion-MNIST training items, uint8 (N, 28, 28) and int (N,).
        seed: seeds Keras, TensorFlow and the batch sampler.
        batch_size: compositions per step.
        empty_caption_share: share of captions replaced by "" (for guidance).
        init_bundle_dir: with no checkpoint in `run_dir`, start from this bundle's weights.
        text_encoder: "joint" (trained with the U-Net) or "clip" (the frozen text tower of the
            tiny CLIP in `clip_dir`, with its tokenizer).
        captions: caption style of `data.compositions` (default: "plain" for joint, the
            CLIP's own for clip).
        autoencoder_bundle_dir: with no checkpoint in `run_dir`, take the autoencoder, its
            latent scale and step count from this bundle (phase 1 is then done).
        settings: what defines the run (dict, the script's flag names), checked against the
            settings `run_dir` started with; default: the arguments that shape the run.
    """

    def __init__(self, run_dir, images, labels, seed=0, batch_size=64, learning_rate=7e-4,
                 empty_caption_share=0.1, ema_decay=0.998, init_bundle_dir=None,
                 text_encoder="joint", clip_dir=None, captions=None,
                 autoencoder_bundle_dir=None, settings=None):
        if text_encoder not in TEXT_ENCODERS:
            raise ValueError(f"text_encoder={text_encoder!r}: choose one of {TEXT_ENCODERS}")
        clip_record = None if text_encoder == "joint" else read_clip_record(clip_dir)
        captions = captions or ("plain" if clip_record is None else clip_record["captions"])
        compositions.check_caption_style(captions)
        check_run_settings(run_dir, dict(settings or dict(
            seed=seed, batch_size=batch_size, text_encoder=text_encoder), captions=captions))
        keras.utils.set_random_seed(seed)
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.empty_caption_share = empty_caption_share
        self.ema_decay = ema_decay
        self.text_encoder_kind, self.captions = text_encoder, captions
        self.vae_encoder = build_vae_encoder(HEIGHT, WIDTH)
        self.decoder = build_decoder(HEIGHT, WIDTH)
        if clip_record is None:
            self.tokenizer = WordTokenizer(max_length=MAX_LENGTH)
            self.text_encoder = build_text_encoder(
                len(self.tokenizer.vocabulary), MAX_LENGTH, TINY.context_dim, TEXT_LAYERS
            )
        else:
            self.tokenizer = WordTokenizer(clip_record["vocabulary"], clip_record["max_length"])
            self.text_encoder = text_encoder_from_clip(load_tiny_clip(clip_dir))
            self.text_encoder.trainable = False
        self.max_length = self.tokenizer.max_length
        self.text_layers = self.text_encoder.num_text_layers
        self.unet = SDUNet(HEIGHT, WIDTH, self.max_length, config=TINY)
        self.diffusion_vars = self.text_encoder.trainable_variables + self.unet.trainable_variables
        self.ema_vars = [tf.Variable(v, trainable=False) for v in self.diffusion_vars]
        self.ae_optimizer = keras.optimizers.Adam(1e-3)
        self.optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=1e-4, clipnorm=1.0)
        self.ae_step = tf.Variable(0, dtype=tf.int64)
        self.step = tf.Variable(0, dtype=tf.int64)
        self.latent_scale = tf.Variable(0.0)
        self.alphas_cumprod = tf.constant(_ALPHAS_CUMPROD, tf.float32)
        self.checkpoint = tf.train.Checkpoint(
            vae_encoder=self.vae_encoder, decoder=self.decoder, text_encoder=self.text_encoder,
            unet=self.unet, ema=self.ema_vars, ae_optimizer=self.ae_optimizer,
            optimizer=self.optimizer, ae_step=self.ae_step, step=self.step,
            latent_scale=self.latent_scale,
        )
        self.manager = tf.train.CheckpointManager(self.checkpoint, run_dir, max_to_keep=2)
        # Build the optimizers' slots before a restore, so that it fills them.
        self.ae_optimizer.build(self.vae_encoder.trainable_variables
                                + self.decoder.trainable_variables)
        self.optimizer.build(self.diffusion_vars)
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
        elif init_bundle_dir is not None:
            self._init_from_bundle(init_bundle_dir)
        elif autoencoder_bundle_dir is not None:
            self._autoencoder_from_bundle(autoencoder_bundle_dir)
        self.seed = seed

    def _autoencoder_from_bundle(self, bundle_dir):
        """The autoencoder, latent scale and autoencoder step count of a shipped bundle."""
        record = bundled.read_record(bundle_dir)
        bundled.load_component(self.vae_encoder, "vae_encoder", bundle_dir)
        bundled.load_component(self.decoder, "decoder", bundle_dir)
        self.ae_step.assign(record["autoencoder_steps"])
        self.latent_scale.assign(record["latent_scale"])

    def _init_from_bundle(self, bundle_dir):
        """Warm start from a shipped bundle (weights and step counts; optimizer state is new)."""
        record = bundled.read_record(bundle_dir)
        for component, model in (("unet", self.unet), ("text_encoder", self.text_encoder),
                                 ("vae_encoder", self.vae_encoder), ("decoder", self.decoder)):
            bundled.load_component(model, component, bundle_dir)
        for ema, var in zip(self.ema_vars, self.diffusion_vars):
            ema.assign(var)
        self.ae_step.assign(record["autoencoder_steps"])
        self.step.assign(record["diffusion_steps"])
        self.latent_scale.assign(record["latent_scale"])

    def _rng(self):
        """Batch sampler seeded by (seed, steps done), so a resumed run draws fresh batches."""
        return np.random.default_rng([self.seed, int(self.ae_step), int(self.step)])

    def _images(self, rng, batch_size=None):
        images, captions = compositions.sample_batch(
            self.images, self.labels, rng, batch_size or self.batch_size, captions=self.captions
        )
        return images.astype(np.float32)[..., None] / 127.5 - 1.0, captions

    # Phase 1: the autoencoder.

    @tf.function
    def _ae_train_step(self, images):
        with tf.GradientTape() as tape:
            mean, log_var = self.vae_encoder(images)
            latent = mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))
            reconstruction = self.decoder(latent)
            mse = tf.reduce_mean(tf.square(reconstruction - images))
            kl = 0.5 * tf.reduce_mean(tf.square(mean) + tf.exp(log_var) - 1.0 - log_var)
            loss = mse + KL_WEIGHT * kl
        variables = self.vae_encoder.trainable_variables + self.decoder.trainable_variables
        self.ae_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.ae_step.assign_add(1)
        return mse, kl

    def train_autoencoder(self, steps, checkpoint_every=500):
        """Runs the autoencoder up to `steps` steps in all; returns the last reconstruction MSE
        (None when no step was left to run)."""
        mse = None
        with tqdm(total=steps, initial=int(self.ae_step), desc="autoencoder") as bar:
            while int(self.ae_step) < steps:
                mse, kl = self._ae_train_step(tf.constant(self._images(self._rng())[0]))
                bar.update(1)
                bar.set_postfix(mse=f"{float(mse):.4f}", kl=f"{float(kl):.3f}")
                if int(self.ae_step) % checkpoint_every == 0 or int(self.ae_step) == steps:
                    self.manager.save()
        return None if mse is None else float(mse)

    def fit_latent_scale(self, num_images=2048):
        """Sets the latent scale to 1 / std of the encoder's mean latents; returns it."""
        if float(self.latent_scale) == 0.0:
            images, _ = self._images(np.random.default_rng(self.seed + 1), num_images)
            mean, _ = self.vae_encoder.predict(images, batch_size=256, verbose=0)
            self.latent_scale.assign(1.0 / float(np.std(mean)))
            self.manager.save()
        return float(self.latent_scale)

    # Phase 2: text encoder and U-Net.

    @tf.function
    def _train_step(self, images, tokens):
        batch = tf.shape(images)[0]
        mean, _ = self.vae_encoder(images)
        latents = mean * self.latent_scale
        timesteps = tf.random.uniform((batch,), 0, 1000, dtype=tf.int32)
        noise = tf.random.normal(tf.shape(latents))
        alpha_bar = tf.reshape(tf.gather(self.alphas_cumprod, timesteps), (-1, 1, 1, 1))
        noisy = tf.sqrt(alpha_bar) * latents + tf.sqrt(1.0 - alpha_bar) * noise
        t_emb = timestep_embedding(tf.cast(timesteps, tf.float32), TINY.time_embedding_dim)
        positions = tf.repeat(tf.range(self.max_length)[None], batch, axis=0)
        with tf.GradientTape() as tape:
            context = self.text_encoder({"tokens": tokens, "positions": positions})
            predicted = self.unet([noisy, t_emb, context])
            loss = tf.reduce_mean(tf.square(predicted - noise))
        self.optimizer.apply_gradients(
            zip(tape.gradient(loss, self.diffusion_vars), self.diffusion_vars)
        )
        self.step.assign_add(1)
        decay = tf.minimum(self.ema_decay, (1.0 + tf.cast(self.step, tf.float32))
                           / (10.0 + tf.cast(self.step, tf.float32)))
        for ema, var in zip(self.ema_vars, self.diffusion_vars):
            ema.assign(decay * ema + (1.0 - decay) * var)
        return loss

    def train_diffusion(self, steps, max_minutes=None, checkpoint_every=250):
        """Trains up to `steps` steps in all or for `max_minutes`; returns the mean recent loss."""
        start, losses = time.time(), []
        with tqdm(total=steps, initial=int(self.step), desc="text encoder + U-Net") as bar:
            while int(self.step) < steps:
                rng = self._rng()
                images, captions = self._images(rng)
                empty = rng.random(len(captions)) < self.empty_caption_share
                captions = ["" if e else c for c, e in zip(captions, empty)]
                loss = float(self._train_step(tf.constant(images),
                                              tf.constant(self.tokenizer(captions), tf.int32)))
                losses.append(loss)
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-100:]):.4f}")
                if int(self.step) % checkpoint_every == 0:
                    self.manager.save()
                if max_minutes is not None and time.time() - start > 60 * max_minutes:
                    break
        self.manager.save()
        return float(np.mean(losses[-200:])) if losses else float("nan")

    def export(self, record, bundle_dir=bundled.ASSETS_DIR):
        """Writes the bundle (EMA weights for the text encoder and U-Net) with `record` and the
        model's own fields (text encoder, captions, vocabulary, steps); returns the record
        written."""
        live = [v.numpy() for v in self.diffusion_vars]
        for var, ema in zip(self.diffusion_vars, self.ema_vars):
            var.assign(ema)
        record = dict(record, latent_scale=float(self.latent_scale), max_length=self.max_length,
                      text_layers=self.text_layers, text_heads=TEXT_HEADS,
                      text_encoder=self.text_encoder_kind, captions=self.captions,
                      vocabulary=self.tokenizer.vocabulary,
                      autoencoder_steps=int(self.ae_step), diffusion_steps=int(self.step),
                      batch_size=self.batch_size)
        bundled.save_bundle(
            {"unet": self.unet, "text_encoder": self.text_encoder,
             "vae_encoder": self.vae_encoder, "decoder": self.decoder},
            record, bundle_dir,
        )
        for var, value in zip(self.diffusion_vars, live):
            var.assign(value)
        return record


DATA_DESCRIPTION = ("Fashion-MNIST train split (60,000 items), 32x64 compositions: 75% pairs "
                    "'a X and a Y', 25% singles 'a X'; 10% empty captions")


def data_description(style):
    """The training data in words, for the record (the first tiny model's words for "plain")."""
    if style == "plain":
        return DATA_DESCRIPTION
    return ("Fashion-MNIST train split (60,000 items), 32x64 compositions: 75% pairs, 25% "
            f"singles 'a X'; {compositions.describe_captions(style)}; 10% empty captions")


def train_tiny(trainer, autoencoder_steps, diffusion_steps, max_minutes=None, export=True,
               export_only=False, bundle_dir=bundled.ASSETS_DIR, command=None, started=None):
    """Runs both phases (unless `export_only`), printing their results, then writes the bundle
    (if `export` or `export_only`) with a record of this run: `command`, seed, data, last
    losses and the minutes since `started` (a `time.time()`, default now). Returns the record
    written, or None."""
    started = time.time() if started is None else started
    ae_mse = loss = None
    minutes = {}
    if not export_only:
        ae_mse = trainer.train_autoencoder(autoencoder_steps)
        scale = trainer.fit_latent_scale()
        print(f"autoencoder reconstruction MSE {ae_mse}, latent scale {scale:.4f}")
        minutes["autoencoder_this_run"] = round((time.time() - started) / 60, 1)
        loss = trainer.train_diffusion(diffusion_steps, max_minutes)
        minutes["diffusion_this_run"] = round((time.time() - started) / 60
                                              - minutes["autoencoder_this_run"], 1)
        print(f"diffusion steps {int(trainer.step)}, recent noise MSE {loss:.4f}")
    if not (export or export_only):
        return None
    record = {
        "command": command,
        "seed": trainer.seed,
        "data": data_description(trainer.captions),
        "autoencoder_mse_last_batch": ae_mse,
        "noise_mse_recent": loss,
        "ema_decay": trainer.ema_decay,
        "minutes_this_run": dict(minutes, total=round((time.time() - started) / 60, 1)),
    }
    record = trainer.export(record, bundle_dir)
    print(f"wrote the bundle to {bundle_dir}")
    return record
