"""The scripts' shared helpers: index lists and default figure names."""

import os

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


NASTY = ["a/../../../../../outside", "/../../escaped", "..", "~/x", "C:\\temp\\x", "a\x00b",
         "Ünïcödé ☃", "a" * 300, ""]


@pytest.mark.parametrize("text", NASTY)
def test_no_name_made_from_text_leaves_its_folder(text, tmp_path):
    from keras_sd_interp.reports.daam import figure_path
    from keras_sd_interp.reports.paths import safe_name

    folder = str(tmp_path / "out")
    name = safe_name(text)
    assert name and len(name) <= 80 and all(c.isalnum() or c == "_" for c in name)
    for path in (prompt_figure_path(text, 0, folder),
                 figure_path(folder, text, 0, word=text, kind="layers"),
                 figure_path(folder, "a bag", 1, word=text, name=safe_name(text))):
        assert os.path.dirname(os.path.realpath(path)) == os.path.realpath(folder), path


def test_names_of_one_run_are_unique_and_long_ones_stay_apart():
    from keras_sd_interp.reports.paths import safe_name, unique_names

    assert unique_names(["a bag", "A bag", "a bag", "a_bag_2"]) == \
        ["a_bag", "a_bag_2", "a_bag_3", "a_bag_2_2"]
    long_a, long_b = "a " * 100 + "bag", "a " * 100 + "coat"
    assert safe_name(long_a) != safe_name(long_b)
    assert len(safe_name(long_a)) == 80
