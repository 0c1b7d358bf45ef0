"""Shards: the pieces a sweep is cut into, by (site, unit range) or by prompt range."""

import dataclasses
import numbers
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

    def __post_init__(self):
        if not all(_is_int(v) for v in (self.start, self.stop)) or not 0 <= self.start < self.stop:
            raise ValueError(f"shard {self.site or 'prompts'} {self.start!r}..{self.stop!r}: "
                             "need integers 0 <= start < stop")

    @property
    def size(self):
        return self.stop - self.start

    @property
    def key(self):
        """A file-safe, unique name: "filters/res_block_3.conv1_00032-00064"."""
        site = re.sub(r"[^A-Za-z0-9_.-]", "_", self.site) or "prompts"
        return f"{self.job}/{site}_{self.start:05d}-{self.stop:05d}"


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _ranges(count, size, what="units"):
    if not _is_int(size) or size <= 0:
        raise ValueError(f"shard size {size!r} must be an integer >= 1")
    if not _is_int(count) or count < 0:
        raise ValueError(f"{what}={count!r}: give an integer count >= 0")
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
            for start, stop in _ranges(count, size, f"units of {site!r}")]


def prompt_shards(job, num_prompts, size):
    """Shards of at most `size` consecutive prompts out of `num_prompts`."""
    return [Shard(job, "", start, stop)
            for start, stop in _ranges(num_prompts, size, "num_prompts")]
