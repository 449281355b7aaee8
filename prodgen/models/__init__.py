"""Generators and discriminators, each registered by name (see registry.py)."""

from prodgen.models import dcgan, patchgan, resnet  # noqa: F401  (importing registers the architectures)
from prodgen.models.layers import DiscriminatorOutput, plan_resolution
from prodgen.models.registry import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator

__all__ = ["DISCRIMINATORS", "GENERATORS", "DiscriminatorOutput", "build_discriminator", "build_generator", "plan_resolution"]
