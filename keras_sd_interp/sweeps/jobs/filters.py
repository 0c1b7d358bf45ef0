"""Feature visualization of every filter, as a sweep job: a shard = a unit range of one conv.

    job = FilterVizJob(model="tiny", mode="corrected", direction="ascent", steps=50)
    run_sweep(job, unit_shards(job.name, job.units(), size=32), SweepFiles(run_dir).store(job))

A shard's filters are optimized as one batch (`featureviz.optimize_latents`), padded to the
shard size (or the conv's filter count, if smaller) so that every call on a conv has one shape:
one trace per conv (a second shape made
`reduce_retracing` trace again). Tracing a truncated model is the big fixed cost: 6 s (conv 3) to
86 s (conv 50) on the tiny U-Net on this loaded 2-core machine. `tap_all` taps every conv in one
compiled step, traced once per worker, but then every item pays the whole U-Net's forward and
backward: measured slower (0.19 against 0.29 units/s on convs 3, 30, 50 at 5 steps,
benchmarks/atlas_bench.py --part=trace), so it is off by default.
Shard arrays: images uint8 (n, H, W, C), latents float32 (n, h, w, 4), losses float32 (steps, n).
"""

import dataclasses

import numpy as np

from keras_sd_interp.featureviz import DescentSettings, conv_target, decode_to_uint8
from keras_sd_interp.featureviz import optimize_latents
from keras_sd_interp.lens.taps import NUM_CONVS, conv_filter_count

# Conv indices of the layers that are one conv (conv_in, downsamples, upsamples, conv_out): the
# same in every preset (tests check it against the built U-Net); the others are ResBlock
# conv1/conv2 pairs, conv1 first.
PLAIN_CONVS = (0, 5, 10, 15, 30, 37, 44, 51)
_MODELS = {}  # (model, height, width, weights_dir, random_weights) -> (unet, decoder)


def conv_role(conv_index):
    """"plain", "conv1" or "conv2", without building a model."""
    if conv_index in PLAIN_CONVS:
        return "plain"
    previous_plain = max(p for p in PLAIN_CONVS if p < conv_index)
    return "conv1" if (conv_index - previous_plain) % 2 == 1 else "conv2"


def conv_site(conv_index):
    return f"conv_{conv_index}"


def site_conv(site):
    """"conv_9" -> 9."""
    return int(site.split("_")[1])


@dataclasses.dataclass(frozen=True)
class FilterVizJob:
    """Which visualization of every filter.

    Attributes:
        model: "tiny" or "sd14"; img_height/img_width: its size (None: the preset's);
        weights_dir / random_weights: as `models.paper.unet_and_decoder`.
        mode: "corrected" or "paper" (the course: whole layer outputs, so a ResBlock's conv1 is
            left out, its layer output is conv2's page).
        direction: "descent" (the paper) or "ascent"; steps, learning_rate (None: the mode's).
        tap_all: one compiled step tapping every conv (see the module doc).
        convs: conv indices to cover (None: all 52).
        batch_size: every shard's batch is padded to it, or to the conv's filter count where
            that is smaller (give the shard size): one shape per conv, one trace. On the tiny
            U-Net 128 runs 1.2-1.5x more filter-steps/s than 32 (docs/atlas.md).
    """

    model: str = "tiny"
    mode: str = "corrected"
    direction: str = "descent"
    steps: int = 50
    learning_rate: float = None
    img_height: int = None
    img_width: int = None
    weights_dir: str = None
    random_weights: bool = False
    tap_all: bool = False
    convs: tuple = None
    batch_size: int = 128

    @property
    def name(self):
        return f"filters_{self.mode}_{self.direction}"

    def descent_settings(self):
        overrides = {"steps": self.steps, "direction": self.direction}
        if self.learning_rate is not None:
            overrides["learning_rate"] = self.learning_rate
        if self.mode == "paper":
            return DescentSettings.paper(**overrides)
        return DescentSettings.corrected(**overrides)

    def settings(self):
        descent = dataclasses.asdict(self.descent_settings())
        return {"model": self.model, "img_height": self.img_height, "img_width": self.img_width,
                "random_weights": self.random_weights, **descent}

    def units(self):
        """dict site ("conv_9") -> number of filters, in conv order, without building."""
        convs = range(NUM_CONVS) if self.convs is None else self.convs
        return {conv_site(k): conv_filter_count(self.model, k) for k in convs
                if not (self.mode == "paper" and conv_role(k) == "conv1")}

    def models(self):
        """(unet with context length 0, decoder), built once per process for all the jobs
        that share model, size and weights (the descent, ascent and paper sweeps)."""
        from keras_sd_interp.models.paper import unet_and_decoder

        key = (self.model, self.img_height, self.img_width, self.weights_dir,
               self.random_weights)
        if key not in _MODELS:
            _MODELS[key] = unet_and_decoder(*key)
        return _MODELS[key]

    def build(self):
        unet, decoder = self.models()
        addresses = None
        if self.tap_all:
            addresses = sorted({conv_target(unet, k, 0, self.mode).address
                                for k in range(NUM_CONVS)})
        return {"unet": unet, "decoder": decoder, "addresses": addresses}

    def padded_size(self, conv_index):
        """The batch of every shard of a conv: `batch_size`, or the conv's filter count where
        that is smaller (a 32-filter conv is not padded to a batch of 128)."""
        return min(self.batch_size, conv_filter_count(self.model, conv_index))

    def run(self, context, shard):
        """Optimizes the shard's filters as one batch, padded to `padded_size` by repeating its
        first filter; returns images, latents and losses."""
        unet, conv = context["unet"], site_conv(shard.site)
        filters = list(range(shard.start, shard.stop))
        padded = filters + [filters[0]] * max(0, self.padded_size(conv) - len(filters))
        targets = [conv_target(unet, conv, f, self.mode) for f in padded]
        settings = self.descent_settings()
        result = optimize_latents(unet, targets, settings, progress=False,
                                  addresses=context["addresses"])
        n = len(filters)
        images = decode_to_uint8(context["decoder"], result.latents[:n], settings.mode)
        return {"images": images, "latents": result.latents[:n].astype(np.float32),
                "losses": result.losses[:, :n].astype(np.float32)}
