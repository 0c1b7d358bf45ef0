"""The atlas's numbers: per-unit summaries of the sweeps' shards and the weight-norm links.

    top = TopExamples(num=4); top.add(shard_arrays, "9")      # streaming per-unit maxima
    connections = unit_connections(unet, conv_index=9, num=8)  # strongest in / out, by norm

Arrays in, JSON-ready dicts and arrays out; the pages are `reports.atlas`, the pipeline that
reads the shards and calls both is `experiments.atlas`.
"""

from keras_sd_interp.atlas.connections import unit_connections
from keras_sd_interp.atlas.summaries import (SelectivityTop, TopExamples, timestep_activity,
                                             word_scores)

__all__ = ["SelectivityTop", "TopExamples", "timestep_activity", "unit_connections", "word_scores"]
