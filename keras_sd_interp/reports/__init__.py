"""Reports: results into files. Methods return arrays and JSON-ready dicts; the functions here
write them (PNG, GIF, JSON, `.npy`, markdown) through `keras_sd_interp.io`, with the figures of
`reports.plotting`. Nothing in featureviz/, circuits/ or ddpm/ imports this package.
"""
