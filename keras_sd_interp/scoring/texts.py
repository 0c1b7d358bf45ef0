"""The scorers' shared text argument."""


def as_texts(texts, n):
    """`texts` (one string, or a list of n) -> list of n strings; ValueError on a length
    mismatch."""
    if isinstance(texts, str):
        return [texts] * n
    texts = list(texts)
    if len(texts) != n:
        raise ValueError(f"{len(texts)} texts for {n} images: give one text per image or one "
                         "text for all")
    return texts
