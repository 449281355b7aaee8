"""Editing product photos: masks (where the product is); colourways, style and translation at inference to come."""
