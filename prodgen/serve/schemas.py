"""The JSON the service takes and gives, as pydantic models: FastAPI validates requests with them and
documents every endpoint in /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from prodgen.edit.style import METHODS
from prodgen.generate.variants import INTERPOLATIONS
from prodgen.serve.settings import MAX_IMAGES_PER_REQUEST

SEED_LIMIT = 2**63  # seeds and indices are whole numbers below this (NumPy seeds its streams from non-negative integers)
ImageFormat = Literal["png", "jpeg", "webp"]
Interpolation = Literal[INTERPOLATIONS]  # the library's names, one place
StyleMethod = Literal[METHODS]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class ConditionFields(Strict):
    category: str | None = Field(None, description="The category to make (conditional models); unknown categories are refused with the valid ones.")
    attributes: dict[str, str] = Field(default_factory=dict, description="Other conditions, e.g. {\"colour\": \"red\"}.")

    def query(self) -> dict[str, str]:
        return ({"category": self.category} if self.category else {}) | self.attributes


class Conditioned(ConditionFields):
    model: str = Field(description="A served model's name (GET /v1/models).")


class GenerateRequest(Conditioned):
    n: int = Field(1, ge=1, le=MAX_IMAGES_PER_REQUEST, description="Number of images.")
    seed: int = Field(0, ge=0, lt=SEED_LIMIT, description="Same seed, same images: image i of a seed is the same whatever n.")
    first_index: int = Field(0, ge=0, lt=SEED_LIMIT, description="The seed's first image to make (to page through a stream).")
    truncation: float = Field(1.0, gt=0, le=1, description="Truncation psi: below 1, typical rather than varied products.")
    post: str = Field("", description="Post-processing chain, e.g. denoise,autocontrast,white-bg,upscale:256,pad:4x5.")
    format: ImageFormat = "png"


class EncodedImage(BaseModel):
    media_type: str = Field(description="image/png, image/jpeg or image/webp.")
    data: str = Field(description="The image file's bytes, base64.")


class ImageMetadata(BaseModel):
    """What makes the image again (`prodgen regenerate`); embedded in the file as well."""

    prodgen_version: str
    model: str
    model_sha256: str
    seed: int
    index: int
    asked: dict[str, str]
    conditions: dict[str, str]
    truncation: float
    post: list[str]
    backend: str
    format: str


class GeneratedImage(EncodedImage):
    index: int
    file_name: str = Field(description="The name `prodgen generate` gives this image.")
    metadata: ImageMetadata


class GenerateResponse(BaseModel):
    model: str
    images: list[GeneratedImage]


class VariantsRequest(Conditioned):
    seed: int = Field(0, ge=0, lt=SEED_LIMIT, description="The product: image `index` of this seed, as generate makes it.")
    index: int = Field(0, ge=0, lt=SEED_LIMIT)
    n: int = Field(8, ge=1, le=MAX_IMAGES_PER_REQUEST, description="Number of variants.")
    distance: float = Field(0.3, gt=0, le=1, description="How far the variants stray: 0.1 nearly the same product, 1 any product.")
    variant_seed: int = Field(0, ge=0, lt=SEED_LIMIT, description="Seed of the variants' directions.")


class VariantsResponse(BaseModel):
    model: str
    base: EncodedImage
    variants: list[EncodedImage]
    latent_distances: list[float]
    conditions: dict[str, str]


class Anchor(Strict):
    seed: int = Field(ge=0, lt=SEED_LIMIT)
    index: int = Field(0, ge=0, lt=SEED_LIMIT)


class InterpolateRequest(Conditioned):
    start: Anchor = Field(alias="from", description="The first product: image `index` of `seed`.")
    end: Anchor = Field(alias="to", description="The last product.")
    steps: int = Field(8, ge=2, le=MAX_IMAGES_PER_REQUEST, description="Images in the walk, both products included.")
    method: Interpolation = "slerp"


class InterpolateResponse(BaseModel):
    model: str
    frames: list[EncodedImage]
    conditions: list[dict[str, str]] = Field(description="The conditions of each end: frames before the middle have the first's.")


class PhotoResult(BaseModel):
    model: str | None = None
    image: EncodedImage = Field(description="The result: a reconstruction, a translation, or a mask (white = product).")
    model_input: EncodedImage | None = Field(None, description="The photo as the model saw it (the catalog's size and look; a translator's view).")
    cutout: EncodedImage | None = Field(None, description="mask: the photo with a transparent background (RGBA PNG).")
    conditions: dict[str, str] | None = Field(None, description="reconstruct: the conditions the photo was encoded with.")
    method: str | None = Field(None, description="mask: how the product was found (plain background or grabcut).")


class Colourway(EncodedImage):
    colour: str = Field(description="The colour as it was asked for (a CSS name, or hex without '#'); a `like` photo's colours by their hex.")
    rgb: str = Field(description="The colour as #rrggbb.")


class ColourwayResponse(BaseModel):
    colourways: list[Colourway] = Field(description="The photo once per colour, in the order asked (colours, then the `like` photo's), "
                                                    "at the photo's size: only the product recoloured, every other pixel the photo's own.")


class StyliseResult(BaseModel):
    image: EncodedImage = Field(description="The photo drawn in the style, at the photo's size (PNG).")
    method: StyleMethod
    size: int = Field(description="The longer side, in pixels, at which the style was computed.")
    steps: int | None = Field(description="gatys: the optimisation steps taken; null for adain.")
    strength: float = Field(description="0: the photo, 1: all style.")


class ImageSize(BaseModel):
    width: int
    height: int
    channels: int


class ModelInfo(BaseModel):
    name: str
    kind: Literal["generator", "autoencoder", "translator"]
    family: str | None = Field(description="The training family as its model card says (gan, vae, vaegan, ...); null without a card.")
    catalog: str | None
    categories: list[str]
    attributes: dict[str, list[str]]
    image: ImageSize
    model_sha256: str | None = Field(description="What generated images' metadata names the weights by (generators).")
    backend: str | None
    directions: list[str] = Field(description="A CycleGAN's directions (translate's `direction`).")
    view: str | None = Field(description="A translator's input: edges or sketch (a drawing, dark lines on white), grey, inpaint (a photo "
                                         "with a hole) or photo (CycleGAN); null for generators.")
    scores: dict[str, dict[str, float]] = Field(description="From the model card: test-split sample scores, reconstruction scores.")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class JobRow(ConditionFields):
    count: int = Field(ge=1, description="Images of this row: images 0 .. count - 1 of its seed.")
    seed: int | None = Field(None, ge=0, lt=SEED_LIMIT, description="Default: the job's seed plus the row's position, as in a plan CSV.")


class JobRequest(Strict):
    model: str = Field(description="A served generator's name.")
    rows: list[JobRow] = Field(min_length=1, max_length=100_000)
    seed: int = Field(0, ge=0, lt=SEED_LIMIT, description="Row k without a seed uses seed + k.")
    truncation: float = Field(1.0, gt=0, le=1)
    post: str = Field("", description="Post-processing chain, as generate's.")
    format: ImageFormat = "png"
    tar: bool = Field(False, description="Each block of 256 images as one tar (WebDataset layout) instead of loose files.")


class JobStatus(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed"]
    model: str
    total: int = Field(description="Images the job makes.")
    done: int = Field(description="Images made so far.")
    progress: float = Field(description="done / total.")
    attempts: int = Field(description="Times a server started the job (a restart resumes it).")
    error: str | None = Field(description="Why the job failed.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: str | None = Field(description="Where the ZIP of a finished job is (GET).")


class ErrorResponse(BaseModel):
    error: str = Field(description="What is wrong, in words.")
    details: list[dict] | None = Field(None, description="Validation errors: each field's location and problem.")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    models: int
