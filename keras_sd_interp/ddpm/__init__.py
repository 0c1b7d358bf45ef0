"""A DDPM on Fashion-MNIST (the annotated-diffusion example in Keras), schedules and the jump sampler."""
