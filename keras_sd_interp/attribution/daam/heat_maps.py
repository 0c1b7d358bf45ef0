"""The result object: every (layer, head, word) map of one image, aggregated once; the global,
per-layer and per-head maps are means over its axes (DAAM's `GlobalHeatMap` and
`WordHeatMap`, with the layer and head axes kept)."""


class HeatMaps:
    """DAAM maps of one image, from `DAAMTrace.compute_heat_maps`.

    Attributes:
        maps: float32 (layers, heads, words, H, W): each word's map per (layer, head),
            summed over the steps, upscaled, clamped and averaged over the word's tokens.
        words, layers, heads: what the first three axes index (layer and head indices).
        prompt: the image's prompt.
        text_rollout: whether the words took the maps of the tokens that carry them.
    """

    def __init__(self, maps, words, layers, heads, prompt, text_rollout=False):
        self.maps = maps
        self.words = list(words)
        self.layers = list(layers)
        self.heads = list(heads)
        self.prompt = prompt
        self.text_rollout = text_rollout
        self._global = None

    def _word_index(self, word):
        if word not in self.words:
            raise ValueError(f"word {word!r} was not computed: these maps are for {self.words}")
        return self.words.index(word)

    def global_maps(self):
        """{word: (H, W)}: each word's map averaged over layers and heads (DAAM's map)."""
        if self._global is None:
            self._global = self.maps.mean(axis=(0, 1))            # (words, H, W)
        return {word: self._global[g] for g, word in enumerate(self.words)}

    def word(self, word):
        """(H, W): one word's DAAM map."""
        self._word_index(word)
        return self.global_maps()[word]

    def per_layer(self, word):
        """(layers, H, W): one map per layer (heads averaged), and the layer indices."""
        return self.maps[:, :, self._word_index(word)].mean(1), self.layers

    def per_head(self, word):
        """(heads, H, W): one map per head (layers averaged), and the head indices."""
        return self.maps[:, :, self._word_index(word)].mean(0), self.heads
