"""Generators, discriminators and encoders, each registered by name (see registry.py)."""

from prodgen.models import dcgan, patchgan, resnet, vae  # noqa: F401  (importing registers the architectures)
from prodgen.models.layers import DiscriminatorOutput, plan_resolution
from prodgen.models.registry import DISCRIMINATORS, ENCODERS, GENERATORS, build_discriminator, build_encoder, build_generator

__all__ = ["DISCRIMINATORS", "ENCODERS", "GENERATORS", "DiscriminatorOutput", "build_discriminator", "build_encoder", "build_generator", "plan_resolution"]
