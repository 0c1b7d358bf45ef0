"""absl flags of the latent-descent scripts (filter visualization, circuits, the paper page),
and the settings they name."""

from absl import flags

from keras_sd_interp import cli

from keras_sd_interp.featureviz.paper import course
from keras_sd_interp.featureviz.paper.descent import (CORRECTED_LEARNING_RATE, CORRECTED_STEPS,
                                                      DescentSettings)

PAPER_DEFAULTS = {"steps": course.STEPS, "learning_rate": course.LEARNING_RATE}
CORRECTED_DEFAULTS = {"steps": CORRECTED_STEPS, "learning_rate": CORRECTED_LEARNING_RATE}


def define_descent_flags(default_mode="corrected", flag_values=flags.FLAGS):
    """--mode, --steps, --learning_rate, --timestep, --direction, --seed, --batch_size,
    --out_dir, --overwrite."""
    where = {"flag_values": flag_values}
    flags.DEFINE_enum("mode", default_mode, ["paper", "corrected"], "paper: the course code "
                      "bug for bug; corrected: the fixed method (see docs/paper_methods.md).",
                      **where)
    flags.DEFINE_integer("steps", None, "Gradient steps (default: 300 in paper mode, 50 "
                         "corrected).", **where)
    flags.DEFINE_float("learning_rate", None, "eta (default: 5 in paper mode, 0.05 corrected).",
                       **where)
    flags.DEFINE_integer("timestep", 500, "Corrected mode's fixed timestep (paper: t = step).",
                         **where)
    flags.DEFINE_enum("direction", "descent", ["descent", "ascent"], "descent: minimally "
                      "exciting (the paper); ascent: maximally exciting.", **where)
    flags.DEFINE_integer("seed", 0, "Seed of the starting latent.", **where)
    flags.DEFINE_integer("batch_size", 16, "Filters optimized together in one compiled step.",
                         **where)
    flags.DEFINE_string("out_dir", None, "Output directory.", **where)
    flags.DEFINE_bool("overwrite", False, "Redo outputs already on disk (default: skip them).",
                      **where)
    cli.check_int("steps", 1, allow_none=True, **where)
    cli.check_float("learning_rate", 0, exclusive_minimum=True, allow_none=True, **where)
    cli.check_int("timestep", 0, 999, **where)
    cli.check_int("batch_size", 1, **where)
    cli.check_out_dir("out_dir", **where)


def settings_from_flags(flag_values):
    """DescentSettings from the flags, with the mode's defaults where a flag is unset."""
    defaults = PAPER_DEFAULTS if flag_values.mode == "paper" else CORRECTED_DEFAULTS
    steps = defaults["steps"] if flag_values.steps is None else flag_values.steps
    learning_rate = flag_values.learning_rate
    if learning_rate is None:
        learning_rate = defaults["learning_rate"]
    return DescentSettings(
        mode=flag_values.mode, steps=steps, learning_rate=learning_rate,
        timestep=flag_values.timestep, direction=flag_values.direction, seed=flag_values.seed,
    )
