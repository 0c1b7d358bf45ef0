"""Shards: the pieces a sweep is cut into, by (site, unit range) or by prompt range."""

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Shard:
    """Units `start..stop-1` of `site` (unit shards) or prompts `start..stop-1` (site "").

    Attributes:
        job: the job's name (a folder of the run).
        site: a tap name ("res_block_3.conv1") or "" for a prompt range.
        start, stop: the half-open range.
    """

    job: str
    site: str
    start: int
    stop: int

    @property
    def size(self):
        return self.stop - self.start

    @property
    def key(self):
        """A file-safe, unique name: "filters/res_block_3.conv1_00032-00064"."""
        site = re.sub(r"[^A-Za-z0-9_.-]", "_", self.site) or "prompts"
        return f"{self.job}/{site}_{self.start:05d}-{self.stop:05d}"


def _ranges(count, size):
    if size <= 0:
        raise ValueError(f"shard size {size} must be >= 1")
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def unit_shards(job, units, size):
    """Shards of at most `size` units per site.

    Args:
        job: the job's name.
        units: dict site -> number of units (or a list of (site, count)), in sweep order.
        size: units per shard.
    Returns:
        list of Shard, site by site.
    """
    items = units.items() if isinstance(units, dict) else units
    return [Shard(job, site, start, stop) for site, count in items
            for start, stop in _ranges(count, size)]


def prompt_shards(job, num_prompts, size):
    """Shards of at most `size` consecutive prompts out of `num_prompts`."""
    return [Shard(job, "", start, stop) for start, stop in _ranges(num_prompts, size)]
