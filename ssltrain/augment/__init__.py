"""Augmentation: view recipes (views.py) made per sample in DataLoader workers (per_sample.py)
or a whole batch at a time on the training device (batched.py, batched_ops.py), and the
pixel normalisation every view, probe and picture goes through (pixels.py)."""
