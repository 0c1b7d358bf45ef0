"""Visualizes SAE latents (or channels) of the tiny U-Net with a feature-visualization preset.

    python scripts/visualize_features.py --latents=306,404 --preset=diffusion --timestep=peak
    python scripts/visualize_features.py --channels=3,5 --preset=lucent --timestep=500 --steps=50

--timestep=peak optimizes each latent at the step where it is most active over a traced
generation of --prompts; an integer fixes t for all. Writes one PNG per item and a JSON record
to --output_dir.
"""

from absl import app
from absl import flags

flags.DEFINE_list("latents", [], "SAE latents to visualize.")
flags.DEFINE_list("channels", [], "Channels of --site to visualize (channel-mean objective).")
flags.DEFINE_string("site", "spatial_transformer_8", "U-Net site (SAE latents: its SAE's).")
flags.DEFINE_string("sae", "keras_sd_interp/assets/sae/tiny_st8.npz", "SAE weights.")
flags.DEFINE_enum("preset", "diffusion", ["paper", "lucent", "diffusion"], "Preset.")
flags.DEFINE_enum("param", None, ["direct", "fourier", "pixel"], "Override the preset's "
                  "parametrization; pixel: an image through the VAE encoder (~1.1x the step).")
flags.DEFINE_string("timestep", "peak", "'peak' or an integer 0..999.")
flags.DEFINE_integer("steps", None, "Override the preset's step count.")
flags.DEFINE_list("prompts", ["a bag and a boot", "a sneaker and a dress", "a coat and a shirt",
                              "a trouser and a sandal", "a t-shirt and a pullover"],
                  "Prompts traced to find each latent's peak timestep.")
flags.DEFINE_integer("seed", 0, "Seed of the start latent and the transforms.")
flags.DEFINE_string("output_dir", "figures/featureviz_sae/visualize", "Output directory.")
FLAGS = flags.FLAGS


def parse_flags():
    try:
        latents = [int(x) for x in FLAGS.latents]
        channels = [int(x) for x in FLAGS.channels]
    except ValueError as err:
        raise app.UsageError(f"--latents/--channels must be integers: {err}")
    if not latents and not channels:
        raise app.UsageError("give --latents and/or --channels")
    if FLAGS.timestep != "peak":
        if not FLAGS.timestep.isdigit() or not 0 <= int(FLAGS.timestep) < 1000:
            raise app.UsageError(f"--timestep={FLAGS.timestep!r}: use 'peak' or 0..999")
    if FLAGS.timestep == "peak" and channels:
        raise app.UsageError("--timestep=peak needs SAE latents; give an integer for channels")
    if FLAGS.steps is not None and FLAGS.steps <= 0:
        raise app.UsageError(f"--steps={FLAGS.steps} must be >= 1")
    return latents, channels


def main(argv):
    del argv
    latents, channels = parse_flags()
    import numpy as np

    from keras_sd_interp.featureviz import objectives as obj
    from keras_sd_interp.featureviz.decode import decode_to_uint8
    from keras_sd_interp.featureviz.render import VizSettings, visualize
    from keras_sd_interp.io import save_image, save_json
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.sae import collect, features, load_sae

    pipe = load_pipeline("tiny")
    sae = load_sae(FLAGS.sae) if latents else None
    if sae is not None and max(latents) >= sae.num_latents:
        raise app.UsageError(f"--latents: {max(latents)} >= the SAE's {sae.num_latents}")
    objective, names = obj.feature_batch(FLAGS.site, sae, latents, channels)
    if FLAGS.timestep == "peak":
        data = collect(pipe, FLAGS.prompts, FLAGS.site, progress=False)
        ts = [features.peak_timestep(sae, data["activations"], data["timesteps"], j)
              for j in latents]
    else:
        ts = [int(FLAGS.timestep)] * (len(latents) + len(channels))
    overrides = {"seed": FLAGS.seed, **({"steps": FLAGS.steps} if FLAGS.steps else {}),
                 **({"param": FLAGS.param} if FLAGS.param else {})}
    settings = VizSettings.preset(FLAGS.preset, **overrides)
    b = len(names)
    context = np.asarray(pipe.encode_prompts([""] * b), np.float32)
    if FLAGS.preset == "paper":
        context = np.zeros_like(context)
    result = visualize(pipe.diffusion_model, objective, settings, b, timesteps=ts,
                       context=context,
                       encoder=pipe.image_encoder if settings.param == "pixel" else None)
    images = decode_to_uint8(pipe.decoder, result.latents,
                             "paper" if FLAGS.preset == "paper" else "corrected")
    for name, image in zip(names, images):
        suffix = f"_{FLAGS.param}" if FLAGS.param else ""
        save_image(f"{FLAGS.output_dir}/{FLAGS.preset}{suffix}_{name}.png", image)
    save_json(f"{FLAGS.output_dir}/{FLAGS.preset}_record.json", {
        "items": names, "timesteps": ts, "preset": FLAGS.preset, "site": FLAGS.site,
        "objective_start": result.objective[0].tolist(),
        "objective_end": result.objective[-1].tolist()})
    print(dict(zip(names, result.objective[-1].round(3).tolist())))


if __name__ == "__main__":
    app.run(main)
