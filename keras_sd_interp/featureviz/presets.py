"""What each feature-visualization preset turns on (`featureviz.render.VizSettings`).

| | paper | lucent | diffusion |
|---|---|---|---|
| parametrization | direct | fourier (1/f) | direct |
| start | uniform*20+128 (the course) | N(0, 1) | N(0, 1) or a generated latent |
| optimizer | g / (rms(g) + 1e-5), eta 5 | Adam 0.05 | AdamW 0.05 |
| steps | 300 | 128 | 150 |
| timestep | t = step index, clean latent | fixed t, clean latent | fixed t, z_t noised, fresh eps |
| transforms | none | jitter 1, rotate 10, scale 1.1, jitter 1 | jitter 2, rotate 20, scale 1.05 |
| penalties | none | none | TV 5.0, range 1.0, moments 0.5 |
| gradient | none | none | blur sigma 0.5 -> 0, 1/(|f|+1) preconditioning |

`paper` reads the course's numbers from `paper.course`; it runs in float32, so it is close to the
course but not bit for bit (`paper.descent` in paper mode is).
"""

from keras_sd_interp.featureviz.paper import course

PRESETS = {
    "paper": dict(param="direct", start="paper", optimizer="rms_step",
                  learning_rate=course.LEARNING_RATE, steps=course.STEPS,
                  timestep_schedule="step_index", noise=False, jitter=0,
                  rotate_degrees=0.0, scale=1.0, jitter_after=0, tv=0.0, range_weight=0.0,
                  moments_weight=0.0, blur_sigma=0.0, precondition=False),
    "lucent": dict(param="fourier", start="normal", optimizer="adam", learning_rate=0.05,
                   steps=128, timestep_schedule="fixed", noise=False, jitter=1,
                   rotate_degrees=10.0, scale=1.1, jitter_after=1, tv=0.0, range_weight=0.0,
                   moments_weight=0.0, blur_sigma=0.0, precondition=False),
    "diffusion": dict(param="direct", start="normal", optimizer="adamw", learning_rate=0.05,
                      steps=150, timestep_schedule="fixed", noise=True, jitter=2,
                      rotate_degrees=20.0, scale=1.05, jitter_after=0, tv=5.0, range_weight=1.0,
                      moments_weight=0.5, blur_sigma=0.5, precondition=True),
}
