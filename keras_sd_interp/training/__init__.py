"""Training, apart from the architecture: the bundled tiny text-to-image model (`tiny`, and its
evaluation by the judge, `tiny_eval`), the Fashion-MNIST DDPM (`ddpm`) and the judge (`judge`).
Each loop resumes from its checkpoints and exports what the package ships in `assets/`.
"""
