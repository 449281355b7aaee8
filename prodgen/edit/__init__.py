"""Editing product photos at inference: colourways, style transfer, image-to-image translation."""
