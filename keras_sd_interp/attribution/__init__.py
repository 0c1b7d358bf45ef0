"""Attribution methods: which parts of the model make the image say what the prompt says."""
