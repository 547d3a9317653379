"""Optimizers (registered by name), the parameter groups they receive, and the
per-iteration schedules of learning rate and weight decay."""
