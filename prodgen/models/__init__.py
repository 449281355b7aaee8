"""Generators, discriminators, encoders and translators, each registered by name (see registry.py)."""

from prodgen.models import dcgan, lightweight, patchgan, resnet, unet, vae  # noqa: F401  (importing registers the architectures)
from prodgen.models.layers import DiscriminatorOutput, plan_resolution
from prodgen.models.registry import DISCRIMINATORS, ENCODERS, GENERATORS, TRANSLATORS, build_discriminator, build_encoder, build_generator, build_translator

__all__ = ["DISCRIMINATORS", "ENCODERS", "GENERATORS", "TRANSLATORS", "DiscriminatorOutput", "build_discriminator", "build_encoder", "build_generator",
           "build_translator", "plan_resolution"]
