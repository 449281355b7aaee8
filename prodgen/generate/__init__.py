"""Sampling product images from trained or shipped generators."""

from prodgen.generate.pipeline import ProductGenerator

__all__ = ["ProductGenerator"]
