"""Circuits: paper mode against a re-implementation of the course's l2norm.ipynb, the corrected
walk along the graph, and the connecting kernels (exact composition against an impulse)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_sd_interp import circuits
from keras_sd_interp.circuits import walk
from keras_sd_interp.lens import graph
from keras_sd_interp.lens.graph import Source


def course_conv_list(unet):
    """Every 4-D weight of shape (3, 3, ., .) in layer order, as the course listed them."""
    return [
        weight.numpy()
        for layer in unet.layers
        for weight in layer.weights
        if len(weight.shape) == 4 and tuple(weight.shape[:2]) == (3, 3)
    ]


def course_seeds(conv):
    seeds = []
    for f in range(conv[51].shape[3]):
        norms = np.linalg.norm(conv[51][:, :, :, f], axis=(0, 1))
        for c in np.argsort(norms)[-15:]:
            seeds.append((c, f, norms[c]))
    return sorted(seeds, key=lambda seed: seed[2], reverse=True)


def course_get_circuit(conv, k, c, f):
    circuit = [(k, f)]
    j = k - 1
    while j > 0:
        circuit.append((j, c))
        order = np.argsort(np.linalg.norm(conv[j][:, :, :, c], axis=(0, 1)))
        i = -1
        while order[i] > conv[j - 1].shape[3]:
            i -= 1
        c = order[i]
        j -= 1
    return circuit


# sd14_unet is the full-size SD v1.4 U-Net (about 25 s to build): long.
@pytest.mark.parametrize("unet_name",
                         ["tiny_unet", pytest.param("sd14_unet", marks=pytest.mark.long)])
def test_paper_circuits_match_the_course(unet_name, request):
    unet = request.getfixturevalue(unet_name)
    conv = course_conv_list(unet)
    expected_seeds = course_seeds(conv)
    found = circuits.find_circuits(unet, top_k=5, mode="paper")
    assert [(s["channel"], s["filter"]) for s in found["seeds"]] == [
        (int(c), f) for c, f, _ in expected_seeds
    ]
    for circuit, (c, f, _) in zip(found["circuits"], expected_seeds):
        path = [(s["conv_index"], s["filter"]) for s in circuit["steps"]]
        try:
            expected = course_get_circuit(conv, 51, c, f)
        except IndexError:  # the course's off-by-one: the walk stops where it would crash
            assert circuit["stopped"] and "IndexError" in circuit["stopped"]
            continue
        assert path == [(k, int(x)) for k, x in expected]
        assert circuit["stopped"] is None and path[-1][0] == 1
        # Each step's strength is the norm of the slice that links it to the step it feeds.
        step = circuit["steps"][10]
        parent = circuit["steps"][step["parent"]]
        expected_strength = np.linalg.norm(conv[parent["conv_index"]][:, :, step["filter"],
                                                                      parent["filter"]])
        assert step["strength"] == pytest.approx(expected_strength, rel=1e-6)
        assert step["layer_index"] == unet.layers.index(unet.layers[step["layer_index"]])


def test_paper_visualized_layers_keep_the_conv2(tiny_unet):
    steps = circuits.find_circuits(tiny_unet, top_k=1, mode="paper")["circuits"][0]["steps"]
    shown = circuits.visualized_steps(steps, "paper")
    assert [s["layer_index"] for s in shown][:4] == [65, 61, 58, 55]
    assert {s["role"] for s in shown} == {"plain", "conv2"}
    assert shown[-1]["layer_index"] == 6  # conv 0 (layer 4) is never reached


@pytest.mark.long  # builds the full-size SD v1.4 U-Net (about 25 s)
def test_graph_skip_and_attention_segments_sd14(sd14_unet):
    assert graph.input_segments(sd14_unet, 38) == [
        (0, 1280, 37, ()), (1280, 1920, 9, ("skip", "attention")),
    ]


def test_graph_skip_attention_and_residual(tiny_unet):
    assert graph.input_segments(tiny_unet, 38) == [
        (0, 96, 37, ()), (96, 160, 9, ("skip", "attention")),
    ]
    # res_block_1.conv1 reads spatial_transformer_0 = res_block_0 (identity residual) + attention.
    assert graph.conv_input_sources(tiny_unet, 3, 7) == [
        Source(2, 7, ("attention",)), Source(0, 7, ("attention", "residual")),
    ]
    # res_block_2 widens 32 -> 64: its residual is a 1x1 projection, followed to its strongest.
    projection = tiny_unet.layers[12].residual_projection.weights[0].numpy()[0, 0]
    sources = graph.conv_input_sources(tiny_unet, 8, 5)
    assert sources[1] == Source(5, int(np.argmax(np.abs(projection[:, 5]))),
                                ("attention", "residual_projection"))
    with pytest.raises(ValueError, match=r"channel 160 out of range for conv 38: .*0\.\.159"):
        graph.conv_input_sources(tiny_unet, 38, 160)


def test_corrected_walk_follows_the_graph_to_conv_0(tiny_unet):
    kernels = course_conv_list(tiny_unet)
    found = circuits.find_circuits(tiny_unet, top_k=5, mode="corrected")
    for circuit in found["circuits"]:
        steps = circuit["steps"]
        path = circuits.main_path(steps)
        assert path[0]["conv_index"] == 51 and path[-1]["conv_index"] == 0
        for parent, step in zip(path, path[1:]):
            strengths = np.linalg.norm(kernels[parent["conv_index"]][:, :, :, parent["filter"]],
                                       axis=(0, 1))
            if parent is not path[0]:  # after the seed: always the strongest input channel
                assert step["input_channel"] == int(np.argmax(strengths))
            assert step["strength"] == pytest.approx(strengths[step["input_channel"]], rel=1e-6)
            expected = graph.conv_input_sources(tiny_unet, parent["conv_index"],
                                                step["input_channel"])[0]
            assert (step["conv_index"], step["filter"]) == (expected.conv_index, expected.filter)
        assert len({(s["conv_index"], s["filter"]) for s in steps}) == len(steps)
        for step in steps:
            if step["branch"] > 0 and steps[step["parent"]]["branch"] != step["branch"]:
                assert "residual" in step["route"]
    assert any(s["branch"] > 0 for c in found["circuits"] for s in c["steps"])


def impulse_response(first, second):
    """Two linear 'same' convs (no bias) applied to a unit impulse in the middle of 11x11."""
    impulse = np.zeros((1, 11, 11, first.shape[2]), np.float64)
    impulse[0, 5, 5, 0] = 1.0
    hidden = tf.nn.conv2d(impulse, first.astype(np.float64), 1, "SAME")
    out = tf.nn.conv2d(hidden, second.astype(np.float64), 1, "SAME")
    return out.numpy()[0, 3:8, 3:8, 0]


def test_composition_equals_two_convs_on_an_impulse():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(3, 3, 1, 6))  # one input channel -> 6 hidden
    second = rng.normal(size=(3, 3, 6, 1))  # 6 hidden -> one output filter
    composed = circuits.compose(first[:, :, 0, :], second[:, :, :, 0])
    # Cross-correlation of an impulse reads the kernel backwards.
    np.testing.assert_allclose(impulse_response(first, second)[::-1, ::-1], composed, atol=1e-12)
    one = circuits.compose(first[:, :, 0, 2], second[:, :, 2, 0])
    np.testing.assert_allclose(
        impulse_response(first[:, :, :, 2:3], second[:, :, 2:3, :])[::-1, ::-1], one, atol=1e-12
    )
    assert not np.allclose(np.matmul(first[:, :, 0, 2], second[:, :, 2, 0]), one[1:4, 1:4])


def test_connecting_kernels_paper_matmul_and_corrected_composition(tiny_unet):
    kernels = course_conv_list(tiny_unet)
    steps = circuits.find_circuits(tiny_unet, top_k=1, mode="paper")["circuits"][0]["steps"]
    path = circuits.main_path(steps)
    paper = circuits.connecting_kernels(tiny_unet, path, "paper")
    plain, resblock = paper[0], paper[1]
    assert (plain["later"]["conv_index"], plain["earlier"]["conv_index"]) == (51, 50)
    np.testing.assert_array_equal(
        plain["kernel"], kernels[51][:, :, path[1]["filter"], path[0]["filter"]]
    )
    assert (resblock["later"]["conv_index"], resblock["earlier"]["conv_index"]) == (50, 48)
    f48, f49, f50 = path[3]["filter"], path[2]["filter"], path[1]["filter"]
    np.testing.assert_allclose(
        resblock["kernel"], np.matmul(kernels[49][:, :, f48, f49], kernels[50][:, :, f49, f50])
    )
    exact = circuits.connecting_kernels(tiny_unet, path, "corrected")[1]["kernel"]
    summed = circuits.connecting_kernels(tiny_unet, path, "corrected", hidden="all")[1]["kernel"]
    assert exact.shape == summed.shape == (5, 5)
    np.testing.assert_allclose(
        impulse_response(kernels[49][:, :, f48 : f48 + 1, :], kernels[50][:, :, :, f50 : f50 + 1])
        [::-1, ::-1], summed, atol=1e-5,
    )


def test_bad_top_k_and_mode(tiny_unet):
    with pytest.raises(ValueError, match=r"top_k=61 out of range: 1\.\.60"):
        circuits.find_circuits(tiny_unet, top_k=61)
    with pytest.raises(ValueError, match=r"mode 'best'"):
        circuits.find_circuits(tiny_unet, mode="best")
