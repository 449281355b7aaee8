"""prodgen: train generative models on product photos and make new product images."""

__version__ = "0.1.0"
