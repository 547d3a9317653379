"""Datasets (sources.py, images.py, decode.py) and the pretraining loaders that feed them to a
method (loader.py: per sample in DataLoader workers; device_loader.py: whole batches resident
on the training device; pipeline.py picks one)."""
