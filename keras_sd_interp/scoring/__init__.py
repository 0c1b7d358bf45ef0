"""Scorers: `score(images, texts) -> (n,)`, what causal tracing (indirect effect), LocoGen
(window scores) and the edit protocol measure. images uint8 (n, H, W, C); texts a list of n
strings or one string for all.

- `JudgeScorer(judge)`: the Fashion-MNIST judge's probability of each item a tiny caption names,
  in its cell (tiny only; the reference);
- CLIP-Score (`ClipScorer`): cosine of keras-cv CLIP's image and text embeddings, as Basu et al.
  score: `sd14_clip_scorer(pipe.tokenizer, preset=... | clip_dir=...)` for SD v1.4,
  `tiny_clip_scorer()` for the tiny model (the same code on the tiny CLIP).

`judge_scorer(judge)(images, spec)` with `subject_spec` is the older per-subject form.
"""

from keras_sd_interp.scoring.clip import ClipScorer, sd14_clip_scorer, tiny_clip_scorer
from keras_sd_interp.scoring.judge import JudgeScorer, caption_items, judge_scorer, subject_spec

__all__ = ["ClipScorer", "JudgeScorer", "caption_items", "judge_scorer", "sd14_clip_scorer",
           "subject_spec", "tiny_clip_scorer"]
