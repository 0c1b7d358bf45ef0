"""Many filter visualizations into a writer, skipping what it already holds.

    written = visualize_into(unet, decoder, targets, settings, FilterFiles(out_dir))

`files` is any object with `pending(targets)` (the targets not written yet) and
`write(batch, result, images)` (returns the stems written), e.g. `reports.featureviz.FilterFiles`.
"""

from keras_sd_interp.featureviz.paper import visualize_batches


def visualize_into(unet, decoder, targets, settings, files, batch_size=16, progress=True):
    """Optimizes and decodes the targets `files` does not hold yet, in batches of `batch_size`
    (shallow targets first), handing each batch to `files.write`; returns the stems written."""
    written = []
    todo = files.pending(targets)
    for batch, result, images in visualize_batches(unet, decoder, todo, settings, batch_size,
                                                   progress):
        written += files.write(batch, result, images)
    return written
