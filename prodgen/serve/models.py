"""The models one server serves, loaded once at start-up: generators (GANs, and VAE decoders with
their encoder), and image-to-image translators. Clients name a model by its served name only, so no
path a client sends ever reaches the file system."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prodgen.data.preprocess import BadImage, prepare_like_catalog
from prodgen.edit.translate import Translator
from prodgen.errors import ProdgenError
from prodgen.generate.autoencoder import NoEncoder, ProductAutoencoder
from prodgen.generate.photos import preprocessing_of
from prodgen.generate.pipeline import ProductGenerator, WrongKind, shipped_models

CARD = "model_card.json"


@dataclass
class ServedModel:
    name: str  # what clients call it
    metadata_name: str  # what a generated image's metadata calls it, as `prodgen generate` does: a shipped name or an absolute path
    source: str
    spec: dict[str, Any]
    generator: ProductGenerator | None = None
    autoencoder: ProductAutoencoder | None = None
    translators: dict[str | None, Translator] = field(default_factory=dict)  # by direction (None: a pix2pix model's one way)
    card: dict[str, Any] | None = None
    preprocessing: dict[str, Any] | None = None  # how uploaded photos are made to look like the catalog's (models that take photos)

    @property
    def kind(self) -> str:
        return "translator" if self.translators else "autoencoder" if self.autoencoder else "generator"

    @property
    def family(self) -> str | None:
        """The training family, as its model card records it (a folder without a card does not say)."""
        return self.card.get("config", {}).get("family", "gan") if self.card else None

    def describe(self) -> dict[str, Any]:
        """What `GET /v1/models` says about the model."""
        conditions = self.spec.get("conditions") or {"names": [], "values": []}
        values = dict(zip(conditions["names"], conditions["values"]))
        height, width, channels = self.spec["output_size"]
        card = self.card or {}
        scores = {"test": (card.get("test_scores") or {}).get("metrics"), "reconstruction": (card.get("reconstruction_scores") or {}).get("metrics")}
        return {"name": self.name, "kind": self.kind, "family": self.family, "catalog": self.spec.get("catalog"),
                "categories": values.pop("category", []), "attributes": values,
                "image": {"width": width, "height": height, "channels": channels},
                "model_sha256": self.generator.weights_sha256 if self.generator else None,
                "backend": self.generator.backend if self.generator else None,
                "directions": sorted(d for d in self.translators if d is not None),
                "view": next(iter(self.translators.values())).view.name if self.translators else None,
                "scores": {key: value for key, value in scores.items() if value}}

    def photo_input(self, data: bytes, field_name: str) -> np.ndarray:
        """An uploaded photo (already checked by content) made into an image like the model's catalog's."""
        try:
            return prepare_like_catalog(data, self.preprocessing)
        except BadImage as exc:
            raise ProdgenError(f"{field_name} is not a usable image: {exc}") from None


def split_name(entry: str) -> tuple[str, str]:
    """`NAME=PATH` serves PATH as NAME; a bare shipped name or path is served under its own (folder) name."""
    name, sep, model = entry.partition("=")
    if sep and name and model:
        return name, model
    return (entry if entry in shipped_models() and not Path(entry).exists() else Path(entry).name), entry


def load_model(entry: str, backend: str) -> ServedModel:
    name, model = split_name(entry)
    metadata_name = model if model in shipped_models() and not Path(model).exists() else str(Path(model).resolve())
    try:
        autoencoder = ProductAutoencoder.load(model)
        generator = autoencoder.generator
    except NoEncoder:
        autoencoder, generator = None, ProductGenerator.load(model)
    except WrongKind:
        first = Translator.load(model)
        translators = {first.direction: first}
        for direction in first.spec.get("directions") or {}:
            if direction not in translators:
                translators[direction] = Translator.load(model, direction)
        return ServedModel(name, metadata_name, first.source, first.spec, translators=translators, card=read_card(first.source),
                           preprocessing=preprocessing_of(first.spec))
    generator.use_backend(backend)
    return ServedModel(name, metadata_name, generator.source, generator.spec, generator, autoencoder, card=read_card(generator.source),
                       preprocessing=preprocessing_of(autoencoder.spec) if autoencoder else None)


def read_card(source: str) -> dict[str, Any] | None:
    path = Path(source) / CARD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


class ModelRegistry:
    """The served models by name, and the one a request may use for what it asks."""

    def __init__(self, models: list[ServedModel]):
        self.models: dict[str, ServedModel] = {}
        for model in models:
            if model.name in self.models:
                raise ProdgenError(f"Two models would be served as {model.name!r}: name one of them with NAME=PATH.")
            self.models[model.name] = model

    @classmethod
    def load(cls, entries: list[str], backend: str) -> ModelRegistry:
        return cls([load_model(entry, backend) for entry in entries or shipped_models()])

    def get(self, name: str) -> ServedModel:
        if name not in self.models:
            raise ProdgenError(f"Unknown model {name!r}; this server serves: {', '.join(self.models) or 'none'}.")
        return self.models[name]

    def generator(self, name: str) -> ServedModel:
        model = self.get(name)
        if model.generator is None:
            raise ProdgenError(f"{name} is an image-to-image translator: use /v1/translate; generators here: {self.names('generator', 'autoencoder')}.")
        return model

    def autoencoder(self, name: str) -> ServedModel:
        model = self.get(name)
        if model.autoencoder is None:
            raise ProdgenError(f"{name} has no encoder (a {model.kind}): reconstructing a photo needs a VAE or VAE-GAN; here: "
                               f"{self.names('autoencoder')}.")
        return model

    def translator(self, name: str, direction: str | None) -> Translator:
        model = self.get(name)
        if not model.translators:
            raise ProdgenError(f"{name} is a product generator, not a translator; translators here: {self.names('translator')}.")
        if direction not in model.translators:
            if direction is None:  # a CycleGAN's default direction, as `prodgen translate` takes it
                return model.translators["a-to-b"]
            known = ", ".join(d for d in model.translators if d is not None)
            raise ProdgenError(f"Unknown direction {direction!r} for {name}" + (f"; it translates {known}." if known else ": a pix2pix model translates one way."))
        return model.translators[direction]

    def names(self, *kinds: str) -> str:
        return ", ".join(name for name, model in self.models.items() if model.kind in kinds) or "none"
