"""SAE activation collection as a sweep job: a shard = one batch of prompts (`ShardPlan`).

    plan = ShardPlan(num_steps=25, steps=(0, 5, 10), positions=64, batch_size=8)
    job = SaeCollectJob(prompts=tuple(prompts), plan=plan, model="sd14", weights_dir="/data")
    run_sweep(job, job.shards(), SweepFiles("runs/sae_sd14").store(job), engine="ray",
              address="auto")
    shard_dataset("runs/sae_sd14/sae_acts", batch_size=4096)   # reads the runner's layout too

Shard b (prompts b*batch_size .. ) is generated with seed plan.seed + b and its positions drawn
with [plan.seed, b] (`sae.collect.record_batch`), so its arrays equal `collect_shards`' shard b
whichever engine made it: tokens (n, C) in plan.dtype, prompt, step, position (n,) int32.
"""

import dataclasses
import hashlib

from keras_sd_interp.sae.collect import ShardPlan, record_batch
from keras_sd_interp.sweeps.shards import prompt_shards


def prompts_digest(prompts):
    """A short, stable fingerprint of the prompt list (the settings hold it, not the list)."""
    return hashlib.sha1("\n".join(prompts).encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class SaeCollectJob:
    """Attributes: prompts (tuple of N strings), plan (ShardPlan), and the pipeline's model,
    img_height, img_width, weights_dir, random_weights, size (as `models.load_pipeline`)."""

    prompts: tuple
    plan: ShardPlan = ShardPlan()
    model: str = "tiny"
    img_height: int = None
    img_width: int = None
    weights_dir: str = None
    random_weights: bool = False
    size: str = "full"
    name: str = "sae_acts"

    def settings(self):
        return {**self.plan.settings(len(self.prompts)), "model": self.model,
                "img_height": self.img_height, "img_width": self.img_width,
                "random_weights": self.random_weights, "size": self.size,
                "prompts_sha1": prompts_digest(self.prompts)}

    def shards(self):
        """One shard per plan.batch_size prompts (the grid `run` requires)."""
        return prompt_shards(self.name, len(self.prompts), self.plan.batch_size)

    def build(self):
        from keras_sd_interp import lens
        from keras_sd_interp.models import load_pipeline

        pipe = load_pipeline(self.model, self.img_height, self.img_width,
                             weights_dir=self.weights_dir, random_weights=self.random_weights,
                             size=self.size)
        shape = lens.list_sites(pipe).get(self.plan.site)
        if shape is None or len(shape) != 3:
            raise ValueError(f"site {self.plan.site!r} has shape {shape}: give a (h, w, C) "
                             "U-Net site")
        return {"pipe": pipe}

    def run(self, context, shard):
        """Generates the shard's prompts and records the plan's site (see the module doc)."""
        size = self.plan.batch_size
        if shard.start % size or shard.stop != min(shard.start + size, len(self.prompts)):
            raise ValueError(f"shard {shard.key}: the collection's shards are batches of "
                             f"batch_size={size} prompts (use job.shards())")
        batch = shard.start // size
        arrays = record_batch(context["pipe"], list(self.prompts[shard.start:shard.stop]),
                              self.plan, batch)
        arrays["prompt"] = arrays.pop("image") + shard.start
        return arrays
