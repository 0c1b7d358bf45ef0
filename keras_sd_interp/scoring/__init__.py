"""Scorers: functions (images uint8, spec) -> (n,) scores that causal tracing, LocoGen and the
edit protocol use. On tiny: the Fashion-MNIST judge's probability of the subject's class in its
cell (`judge.py`)."""

from keras_sd_interp.scoring.judge import judge_scorer, subject_spec

__all__ = ["judge_scorer", "subject_spec"]
