"""File names made from user text (prompts, words, concepts): one sanitiser for all of them.

`safe_name` keeps lower-case letters, digits and "_" only, so a name made from text can never
hold a path separator or "..": whatever the text, the file lands inside the folder it is
written to. `unique_names` keeps the names of one run apart ("a bag" and "A bag" are
"a_bag" and "a_bag_2").
"""

import hashlib
import os
import re

MAX_NAME_LENGTH = 80


def safe_name(text, fallback="unnamed", max_length=MAX_NAME_LENGTH):
    """"A sneaker/../bag!" -> "a_sneaker_bag"; "" -> `fallback`. Names longer than
    `max_length` are cut and end in 8 hex digits of the text's SHA-1, so two long texts that
    share a beginning still get two names."""
    slug = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or fallback
    if len(slug) > max_length:
        digest = hashlib.sha1(str(text).encode("utf-8")).hexdigest()[:8]
        slug = slug[:max_length - 9].rstrip("_") + "_" + digest
    return slug


def unique_names(texts, fallback="unnamed"):
    """`safe_name` of each text, with "_2", "_3", ... on the second, third, ... text whose name
    is taken already: ["a bag", "A bag", "a bag"] -> ["a_bag", "a_bag_2", "a_bag_3"]."""
    names, taken = [], set()
    for text in texts:
        base = name = safe_name(text, fallback)
        copy = 1
        while name in taken:
            copy += 1
            name = f"{base}_{copy}"
        taken.add(name)
        names.append(name)
    return names


def prompt_figure_path(prompt, seed, folder=os.path.join("figures", "generate"), name=None):
    """Default PNG path of a generated grid: "a sneaker and a bag", 0 ->
    figures/generate/a_sneaker_and_a_bag_seed0.png ("unconditional" for an empty prompt;
    `name` replaces the prompt's own, e.g. one of `unique_names`)."""
    return os.path.join(folder, f"{name or safe_name(prompt, 'unconditional')}_seed{seed}.png")
