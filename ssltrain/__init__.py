"""ssltrain: self-supervised representation learning on images from one command."""

__version__ = "0.1.0"
