"""Experiments: a method's whole run, from models to results handed to a writer.

The models come from `models` (`models.paper.unet_and_decoder` for the paper's U-Net with an
empty context). Each module here computes with the methods and hands what it finds to a writer object from
`reports` (passed in by the caller, so nothing here imports `reports`), asking the writer what
is already written so that an interrupted run resumes:

- `filters`: many filter visualizations into a writer (`reports.featureviz.FilterFiles`);
- `paper`: the paper's pipeline, circuits -> filter images -> kernels -> branch SVD
  (`reports.paper.PaperFiles` writes it and its page).
"""
