"""The conv inventory against the tables of ARCHITECTURE.md, for both configs."""

import pytest

from keras_sd_interp.lens import taps

CONV_BEARING_LAYERS = [4, 6, 9, 11, 12, 14, 16, 17, 19, 21, 22, 23, 24, 26, 28, 30, 32, 33, 35,
                       38, 41, 43, 45, 48, 51, 53, 55, 58, 61, 65]
RESBLOCK_LAYERS = [6, 9, 12, 14, 17, 19, 22, 23, 24, 26, 28, 30, 32, 35, 38, 41, 45, 48, 51, 55,
                   58, 61]
PLAIN_CONV_INDICES = [0, 5, 10, 15, 30, 37, 44, 51]


def check_inventory(unet, widths, preset):
    c1, c2, c3 = widths
    inventory = taps.conv_inventory(unet)
    # The filter counts scripts check before building a model are the built model's.
    assert [taps.conv_filter_count(preset, i) for i in range(52)] == [
        e.kernel_shape[-1] for e in inventory]
    assert [e.conv_index for e in inventory] == list(range(52))
    assert taps.conv_bearing_layers(unet) == CONV_BEARING_LAYERS
    assert [e.conv_index for e in inventory if e.role == "plain"] == PLAIN_CONV_INDICES
    assert sorted({e.layer_index for e in inventory if e.role != "plain"}) == RESBLOCK_LAYERS
    assert [(e.layer_index, e.weight_index) for e in inventory[:3]] == [(4, 0), (6, 2), (6, 8)]
    assert (inventory[-1].layer_index, inventory[-1].weight_index) == (65, 0)
    # The paper's branch plot: conv 9 = res_block_3's conv2 feeding conv 38 = res_block_16's conv1.
    assert inventory[9].name == "res_block_3.conv2" and inventory[9].layer_index == 14
    assert inventory[9].kernel_shape == (3, 3, c2, c2)
    assert inventory[38].name == "res_block_16.conv1" and inventory[38].layer_index == 45
    assert inventory[38].kernel_shape == (3, 3, c3 + c2, c2)
    assert inventory[0].kernel_shape == (3, 3, 4, c1) and inventory[51].kernel_shape == (3, 3, c1, 4)
    assert [e.name for e in inventory if e.role == "plain"] == [
        "conv_in", "downsample_0", "downsample_1", "downsample_2",
        "upsample_0", "upsample_1", "upsample_2", "conv_out",
    ]


def test_tiny_inventory(tiny_unet):
    check_inventory(tiny_unet, (32, 64, 96), "tiny")
    assert taps.conv_kernel(tiny_unet, 9).shape == (3, 3, 64, 64)


@pytest.mark.long  # builds the full-size SD v1.4 U-Net (about 25 s)
def test_sd14_inventory(sd14_unet):
    check_inventory(sd14_unet, (320, 640, 1280), "sd14")
    assert taps.layer_name(sd14_unet, 45) == "res_block_16"


def test_conv_kernel_bad_index(tiny_unet):
    with pytest.raises(ValueError, match="conv 52 out of range"):
        taps.conv_kernel(tiny_unet, 52)
