"""The file-writing side of the circuit tools: names, resume, the reproduce index."""

import os

import numpy as np
from absl import flags

from keras_sd_interp import circuits
from keras_sd_interp.circuits.branch_svd import outlying_points
from keras_sd_interp.featureviz import DescentSettings
from keras_sd_interp.cli.descent import define_descent_flags, settings_from_flags
from keras_sd_interp.experiments import circuits as circuit_runs
from keras_sd_interp.reports import circuits as circuit_reports
from keras_sd_interp.experiments.paper import circuit_steps
from keras_sd_interp.reports import paper


def test_weight_plots_named_like_the_course_and_resumed(tiny_unet, tmp_path):
    found = circuits.find_circuits(tiny_unet, top_k=1, mode="paper")
    pairs = circuit_runs.circuit_kernels(tiny_unet, found)
    paths = circuit_reports.write_weight_plots(pairs, tmp_path, dpi=20)
    path = circuits.main_path(found["circuits"][0]["steps"])
    first = (f"layer_{path[1]['layer_index']}_filter_{path[1]['filter']}_to_layer_65_filter_"
             f"{path[0]['filter']}_weights.png")
    assert os.path.basename(paths[0]) == first
    assert all(os.path.exists(p) for p in paths)
    stamp = os.path.getmtime(paths[0])
    circuit_reports.write_weight_plots(pairs, tmp_path, dpi=20)
    assert os.path.getmtime(paths[0]) == stamp


def test_corrected_targets_include_conv1_and_conv_0(tiny_unet):
    found = circuits.find_circuits(tiny_unet, top_k=2, mode="corrected")
    stems = [t.stem for t in circuit_runs.circuit_targets(tiny_unet, found)]
    assert any("_conv1_" in s for s in stems) and any("_conv2_" in s for s in stems)
    assert any(s.startswith("layer_4_filter_") for s in stems)
    assert len(stems) == len(set(stems))


def test_branch_filters_fall_back_to_outliers():
    points = np.zeros((10, 2))
    points[7] = [5.0, 5.0]
    points[2] = [-3.0, 0.0]
    assert outlying_points(points, 2) == (7, 2)
    result = circuits.BranchSVD(points.T, points, np.ones(2), (0, 10))
    assert circuits.branch_filters(result)[1][:2] == (7, 2)


def test_index_says_which_paper_figure(tiny_unet):
    found = circuits.find_circuits(tiny_unet, top_k=2, mode="paper")
    steps = [circuit_steps(tiny_unet, c, "paper", circuits.connecting_kernels(
        tiny_unet, circuits.main_path(c["steps"]), "paper")) for c in found["circuits"]]
    branch = {"figure": "x/branch_svd_conv_9_conv_38.png", "marked_a": (1,), "marked_b": (2,),
              "images": ["x/branch_filters/layer_14_filter_1.png"]}
    context = paper.page_context(found, steps, branch, DescentSettings.paper(steps=3),
                                 DescentSettings.corrected(), "tiny")
    text = paper.index_text(context)
    assert "Appendix A (the 2nd best circuit)" in text and "Appendix B" in text
    assert "`branch_svd_conv_9_conv_38.png`" in text and "3 steps, eta 5.0" in text
    assert "](branch_filters/layer_14_filter_1.png)" in text
    html = paper.index_html(context)
    assert html.count('src="corrected_ascent/') == text.count("](corrected_ascent/") > 5


def test_flag_defaults_follow_the_mode():
    values = flags.FlagValues()
    define_descent_flags(flag_values=values)
    values(["prog", "--mode=paper"])
    assert settings_from_flags(values) == DescentSettings.paper()
    values(["prog", "--mode=corrected", "--steps=7"])
    settings = settings_from_flags(values)
    assert (settings.steps, settings.learning_rate, settings.timestep) == (7, 0.05, 500)


def test_clear_outputs_removes_only_what_a_reproduce_run_writes(tmp_path):
    from keras_sd_interp.reports.paper import clear_outputs

    for name in ("filters/layer_6_filter_0.png", "weights/a_weights.png",
                 "branch_filters/layer_14_filter_1.png", "circuit_0.png", "circuits.json",
                 "branch_svd_conv_9_conv_38_left.npy", "index.md", "my_notes.txt",
                 "other/keep.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert clear_outputs(str(tmp_path)) == 7
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["keep.png", "my_notes.txt", "other"]
    assert clear_outputs(str(tmp_path / "missing")) == 0
