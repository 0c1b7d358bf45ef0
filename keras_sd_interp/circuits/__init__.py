"""Circuits: weight-norm circuits walked back from the output conv, the kernels connecting their
steps, and branch-specialization SVD. Each method has a `paper` mode (the course code, bug for
bug) and a corrected default; every function returns arrays or JSON-ready dicts (their files:
`reports.circuits` and `reports.paper`).

    found = find_circuits(unet, top_k=5, mode="corrected")
    pairs = connecting_kernels(unet, main_path(found["circuits"][0]["steps"]), "corrected")
    svd = branch_svd(unet, 9, 38, mode="paper", concat=True)     # the paper's figure
"""

from keras_sd_interp.circuits.branch_svd import BranchSVD, branch_filters, branch_svd
from keras_sd_interp.circuits.kernels import compose, connecting_kernels
from keras_sd_interp.circuits.strength import Seed, channel_strengths, output_seeds
from keras_sd_interp.circuits.walk import find_circuits, main_path, visualized_steps

__all__ = [
    "BranchSVD", "Seed", "branch_filters", "branch_svd", "channel_strengths", "compose",
    "connecting_kernels", "find_circuits", "main_path", "output_seeds", "visualized_steps",
]
