"""The lens: the only code that reaches inside the models.

- `sites`: the named points every rebuilt layer reports through, `hooks(...)` and the edits;
- `taps`: addresses (layer index, conv index, readable name), tap models, run_with_cache/hooks.
"""
