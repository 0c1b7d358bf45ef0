"""Token maps from the source prompt to each edited prompt (prompt-to-prompt's `seq_aligner`).

- `replacement_mapper`: for replace (same number of words): an (L, L) matrix M with
  edited[n] = sum_w source[w] * M[w, n]; a replaced word whose token counts differ shares the
  source tokens' maps (1 / number of target tokens each).
- `refinement_mapper`: for refine: global alignment (Needleman-Wunsch, gap 0, match 1,
  mismatch -1) of the token ids, traced back to, per target token, the source token it takes
  its map from (alpha 1) or none (alpha 0: an inserted token keeps its own map).
"""

import numpy as np

from keras_sd_interp.editing.prompt_to_prompt.words import prompt_words, sequence, word_spans

GAP, MATCH, MISMATCH = 0, 1, -1
LEFT, UP, DIAGONAL, ORIGIN = 1, 2, 3, 4


def global_align(x, y, gap=GAP, match=MATCH, mismatch=MISMATCH):
    """Score and traceback matrices (len(x)+1, len(y)+1) of the global alignment of two id
    lists. Ties prefer left (a gap in x), then up, then the diagonal, as seq_aligner does."""
    score = np.zeros((len(x) + 1, len(y) + 1), np.int32)
    score[0, 1:] = (np.arange(len(y)) + 1) * gap
    score[1:, 0] = (np.arange(len(x)) + 1) * gap
    trace = np.zeros_like(score)
    trace[0, 1:], trace[1:, 0], trace[0, 0] = LEFT, UP, ORIGIN
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            left, up = score[i, j - 1] + gap, score[i - 1, j] + gap
            diagonal = score[i - 1, j - 1] + (match if x[i - 1] == y[j - 1] else mismatch)
            score[i, j] = max(left, up, diagonal)
            trace[i, j] = LEFT if score[i, j] == left else UP if score[i, j] == up else DIAGONAL
    return score, trace


def target_to_source(x, y):
    """Per token of y, the index of the token of x aligned with it, or -1 (inserted).

    Returns int array (len(y),)."""
    _, trace = global_align(x, y)
    i, j, pairs = len(x), len(y), []
    while i > 0 or j > 0:
        move = trace[i, j]
        if move == DIAGONAL:
            i, j = i - 1, j - 1
            pairs.append((j, i))
        elif move == LEFT:
            j -= 1
            pairs.append((j, -1))
        elif move == UP:
            i -= 1
        else:
            break
    return np.array([source for _, source in reversed(pairs)], np.int64)


def refinement_mapper(source_ids, target_ids, length):
    """(index (length,) int64, alphas (length,) float32) for one edited prompt: target token n
    takes source token index[n]'s map where alphas[n] is 1; padding maps to itself."""
    aligned = target_to_source(source_ids, target_ids)
    index = np.arange(length, dtype=np.int64)
    alphas = np.ones(length, np.float32)
    index[:len(aligned)] = aligned
    alphas[:len(aligned)] = (aligned != -1).astype(np.float32)
    return index, alphas


def refinement_mappers(tokens, source, edits):
    """Stacked refinement mappers: index (E, L) int64 and alphas (E, L) float32."""
    x = sequence(tokens, source)
    maps = [refinement_mapper(x, sequence(tokens, edit), tokens.length) for edit in edits]
    return np.stack([m for m, _ in maps]), np.stack([a for _, a in maps])


def check_same_word_count(source, edit):
    if len(prompt_words(source)) != len(prompt_words(edit)):
        raise ValueError(
            f"replace needs the same number of words: {source!r} has "
            f"{len(prompt_words(source))}, {edit!r} has {len(prompt_words(edit))} "
            "(use refine for prompts that add or remove words)")


def replacement_mapper_from_spans(source_spans, target_spans, length):
    """(length, length) float32 matrix from the word spans of two prompts of as many words.

    Unchanged words map token to token along the running alignment; a word whose spans differ
    in length spreads each source token over the target's tokens with weight 1 / len(target).
    (Seq_aligner maps j -> j after the last replaced word; we keep the running (i, j), which is
    the same whenever the replaced words keep their token counts.)
    """
    mapper = np.zeros((length, length), np.float32)
    for source_span, target_span in zip(source_spans, target_spans):
        if len(source_span) == len(target_span):
            mapper[source_span, target_span] = 1.0
        else:
            for target in target_span:
                mapper[source_span, target] = 1.0 / len(target_span)
    i = 1 + sum(len(span) for span in source_spans)
    j = 1 + sum(len(span) for span in target_spans)
    mapper[0, 0] = 1.0  # the start token
    while i < length and j < length:  # the end token and the padding
        mapper[i, j] = 1.0
        i, j = i + 1, j + 1
    return mapper


def replacement_mappers(tokens, source, edits):
    """Stacked replacement mappers (E, L, L) float32; ValueError for word counts that differ."""
    for edit in edits:
        check_same_word_count(source, edit)
    source_spans = word_spans(tokens, source)
    return np.stack([replacement_mapper_from_spans(source_spans, word_spans(tokens, edit),
                                                   tokens.length) for edit in edits])
