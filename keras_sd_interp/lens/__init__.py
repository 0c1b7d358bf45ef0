"""The lens: the only code that reaches inside the models.

- `sites`: the named points every rebuilt layer reports through, `hooks(...)` and the edits;
- `taps`: addresses (layer index, conv index, readable name), tap models, run_with_cache/hooks;
- `graph`: which layer feeds which (Keras' inbound nodes) and where a channel comes from;
- `cache`: `model_cache(model)`, the one per-model cache of everything computed once per model.
"""
