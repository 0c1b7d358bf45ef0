"""The scripts' shared helpers: index lists and default figure names."""

import pytest

from keras_sd_interp.cli import parse_numbers
from keras_sd_interp.reports.paths import prompt_figure_path


def test_parse_numbers_lists_and_ranges():
    assert parse_numbers(["0", "3-5", " 7 "]) == [0, 3, 4, 5, 7]
    assert parse_numbers([]) == []


@pytest.mark.parametrize("bad", ["x", "5-3", "-2", "1-", "1.5"])
def test_parse_numbers_names_the_bad_entry(bad):
    with pytest.raises(ValueError, match="bad index"):
        parse_numbers([bad])


def test_prompt_figure_path():
    assert prompt_figure_path("a sneaker and a bag", 0) == \
        "figures/generate/a_sneaker_and_a_bag_seed0.png"
    assert prompt_figure_path("", 3, "out") == "out/unconditional_seed3.png"
