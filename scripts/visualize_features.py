"""Visualizes SAE latents (or channels) of the U-Net with a feature-visualization preset.

    python scripts/visualize_features.py --latents=306,404 --preset=diffusion --timestep=peak
    python scripts/visualize_features.py --channels=3,5 --preset=lucent --timestep=500 --steps=50
    python scripts/visualize_features.py --model=sd14 --weights_dir=DIR \
        --sae=sae-ckpts/unet.up_blocks.1.attentions.1 --latents=100,2000 --timestep=peak

--sae: our .npz (`scripts/train_sae.py`) or a SAeUron checkpoint folder (cfg.json +
sae.safetensors, e.g. `bcywinski/SAeUron`'s `unet.up_blocks.1.attentions.1`, our
spatial_transformer_8). --timestep=peak optimizes each latent at the step where it is most
active over a traced generation of --prompts (--trace_steps DDIM steps); an integer fixes t for
all. --context_prompt is the text the U-Net sees while optimizing (default: the empty prompt).
Writes one PNG per item and a JSON record to --output_dir.
"""

from absl import app
from absl import flags

from keras_sd_interp import cli

TINY_SAE = "keras_sd_interp/assets/sae/tiny_st8.npz"
TINY_PROMPTS = ["a bag and a boot", "a sneaker and a dress", "a coat and a shirt",
                "a trouser and a sandal", "a t-shirt and a pullover"]
SD14_PROMPTS = ["a photo of a cat", "a photo of a dog", "a photo of a bottle in a room",
                "a painting in the style of Van Gogh", "a car on a street"]

cli.define_model_flags(mini=True)
flags.DEFINE_list("latents", [], "SAE latents to visualize (e.g. 3,10-12).")
flags.DEFINE_list("channels", [], "Channels of --site to visualize (channel-mean objective).")
flags.DEFINE_string("site", "spatial_transformer_8", "U-Net site (SAE latents: its SAE's).")
flags.DEFINE_string("sae", None, f"SAE weights: an .npz or a SAeUron folder (tiny default: "
                    f"{TINY_SAE}; sd14: required for --latents).")
flags.DEFINE_enum("preset", "diffusion", ["paper", "lucent", "diffusion"], "Preset.")
flags.DEFINE_enum("param", None, ["direct", "fourier", "pixel"], "Override the preset's "
                  "parametrization; pixel: an image through the VAE encoder (~1.1x the step).")
flags.DEFINE_string("timestep", "peak", "'peak' or an integer 0..999.")
flags.DEFINE_integer("steps", None, "Override the preset's step count.")
flags.DEFINE_list("prompts", None, "Prompts traced to find each latent's peak timestep "
                  "(default: five of the model's kind).")
flags.DEFINE_integer("trace_steps", 25, "DDIM steps of that traced generation.")
flags.DEFINE_string("context_prompt", "", "Text context while optimizing ('' = empty prompt; "
                    "the paper preset uses zeros).")
flags.DEFINE_integer("seed", 0, "Seed of the start latent and the transforms.")
flags.DEFINE_string("output_dir", "figures/featureviz_sae/visualize", "Output directory.")
FLAGS = flags.FLAGS
cli.check_index_list("latents")
cli.check_index_list("channels")
cli.check_int("steps", 1, allow_none=True)
cli.check_int("trace_steps", 1)
cli.check_out_dir("output_dir")


def parse_flags():
    latents, channels = cli.parse_numbers(FLAGS.latents), cli.parse_numbers(FLAGS.channels)
    if not latents and not channels:
        raise app.UsageError("give --latents and/or --channels")
    if FLAGS.timestep != "peak":
        if not FLAGS.timestep.isdigit() or not 0 <= int(FLAGS.timestep) < 1000:
            raise app.UsageError(f"--timestep={FLAGS.timestep!r}: use 'peak' or 0..999")
    if FLAGS.timestep == "peak" and channels:
        raise app.UsageError("--timestep=peak needs SAE latents; give an integer for channels")
    if latents and FLAGS.sae is None and FLAGS.model != "tiny":
        raise app.UsageError(f"--model={FLAGS.model} has no bundled SAE: give --sae (an .npz "
                             "from train_sae.py or a SAeUron folder)")
    if FLAGS.sae is not None and not latents:
        raise app.UsageError(f"--sae={FLAGS.sae} is read for --latents only; give --latents or "
                             "leave --sae out")
    problem = cli.unet_site_problem(FLAGS.site, FLAGS.model, FLAGS.img_height, FLAGS.img_width,
                                    channels)
    if problem:
        raise app.UsageError(problem)
    check_prompts()
    return latents, channels


def check_prompts():
    """--prompts (read for --timestep=peak only) and --context_prompt, against --model's
    tokenizer (no model is built)."""
    if FLAGS.prompts is not None and FLAGS.timestep != "peak":
        raise app.UsageError(f"--prompts are traced for --timestep=peak only; with "
                             f"--timestep={FLAGS.timestep} they would be ignored")
    if FLAGS.prompts is not None and not FLAGS.prompts:
        raise app.UsageError("--prompts is empty: give prompts, or leave it out for five of the "
                             "model's kind")
    for flag, prompts in (("prompts", FLAGS.prompts or []),
                          ("context_prompt", [FLAGS.context_prompt])):
        for prompt in prompts:
            problem = cli.prompt_problem(FLAGS.model, prompt)
            if problem:
                raise app.UsageError(f"--{flag}: {problem}")


def load_checked_sae(latents):
    """The SAE of --sae (None without latents); its size checked before any model is built."""
    from keras_sd_interp.sae import load_sae

    if not latents:
        return None
    try:
        sae = load_sae(FLAGS.sae or TINY_SAE)
    except ValueError as error:
        raise app.UsageError(f"--sae: {error}") from error
    if max(latents) >= sae.num_latents:
        raise app.UsageError(f"--latents: {max(latents)} is out of range: the SAE has "
                             f"{sae.num_latents} latents (0..{sae.num_latents - 1})")
    check_sae_width(sae.d_in)
    return sae


def check_sae_width(d_in):
    """The SAE's input width against --site's channels, from the model's config (no model)."""
    from keras_sd_interp.models import DEFAULT_SIZES
    from keras_sd_interp.models.config import sized_config
    from keras_sd_interp.training.sae_shards import transformer_site_shape

    height, width, _ = DEFAULT_SIZES[FLAGS.model]
    config = sized_config(FLAGS.model, FLAGS.model_size)
    shape = transformer_site_shape(config, FLAGS.img_height or height,
                                   FLAGS.img_width or width, FLAGS.site)
    if shape is not None and shape[2] != d_in:
        raise app.UsageError(f"--sae has d_in {d_in}; {FLAGS.site} of --model={FLAGS.model} "
                             f"has {shape[2]} channels: give an SAE trained on that site")


def main(argv):
    del argv
    latents, channels = parse_flags()
    sae = load_checked_sae(latents)
    import numpy as np

    from keras_sd_interp import lens
    from keras_sd_interp.featureviz import objectives as obj
    from keras_sd_interp.featureviz.decode import decode_to_uint8
    from keras_sd_interp.featureviz.render import VizSettings, visualize
    from keras_sd_interp.io import save_image, save_json
    from keras_sd_interp.sae import collect, features

    pipe = cli.pipeline_from_flags(FLAGS)
    width = lens.list_sites(pipe.diffusion_model).get(FLAGS.site, (None,))[-1]
    if width is None:
        raise app.UsageError(f"--site={FLAGS.site!r} is not a site of {FLAGS.model}")
    if channels and max(channels) >= width:
        raise app.UsageError(f"--channels {max(channels)} out of range: {FLAGS.site} of "
                             f"{FLAGS.model} has channels 0..{width - 1}")
    if sae is not None and sae.d_in != width:
        raise app.UsageError(f"--sae has d_in {sae.d_in}; {FLAGS.site} of {FLAGS.model} has "
                             f"{width} channels")
    objective, names = obj.feature_batch(FLAGS.site, sae, latents, channels)
    if FLAGS.timestep == "peak":
        prompts = FLAGS.prompts or (TINY_PROMPTS if FLAGS.model == "tiny" else SD14_PROMPTS)
        data = collect(pipe, prompts, FLAGS.site, num_steps=FLAGS.trace_steps, progress=False)
        ts = [features.peak_timestep(sae, data["activations"], data["timesteps"], j)
              for j in latents]
    else:
        ts = [int(FLAGS.timestep)] * (len(latents) + len(channels))
    overrides = {"seed": FLAGS.seed, **({"steps": FLAGS.steps} if FLAGS.steps else {}),
                 **({"param": FLAGS.param} if FLAGS.param else {})}
    settings = VizSettings.preset(FLAGS.preset, **overrides)
    b = len(names)
    context = np.asarray(pipe.sampler.encode([FLAGS.context_prompt] * b), np.float32)
    if FLAGS.preset == "paper":
        context = np.zeros_like(context)
    result = visualize(pipe.diffusion_model, objective, settings, b, timesteps=ts,
                       context=context,
                       encoder=pipe.image_encoder if settings.param == "pixel" else None)
    images = decode_to_uint8(pipe.decoder, result.latents,
                             "paper" if FLAGS.preset == "paper" else "corrected")
    suffix = f"_{FLAGS.param}" if FLAGS.param else ""
    for name, image in zip(names, images):
        save_image(f"{FLAGS.output_dir}/{FLAGS.preset}{suffix}_{name}.png", image)
    save_json(f"{FLAGS.output_dir}/{FLAGS.preset}_record.json", {
        "model": FLAGS.model, "sae": FLAGS.sae or (TINY_SAE if latents else None),
        "items": names, "timesteps": ts, "preset": FLAGS.preset, "site": FLAGS.site,
        "context_prompt": FLAGS.context_prompt,
        "objective_start": result.objective[0].tolist(),
        "objective_end": result.objective[-1].tolist()})
    print(dict(zip(names, result.objective[-1].round(3).tolist())))


if __name__ == "__main__":
    app.run(main)
