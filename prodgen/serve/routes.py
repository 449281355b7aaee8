"""The JSON endpoints: each reads its request, calls the library and encodes the images. Heavy work
runs in FastAPI's thread pool (plain `def` routes), generate's forward passes in the model's
inference worker (prodgen.serve.batching)."""

from __future__ import annotations

import asyncio
import base64
import io
import pathlib
import tempfile
from dataclasses import dataclass

import numpy as np
from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response, StreamingResponse
from PIL import Image
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from prodgen.data.masks import cutout, product_mask
from prodgen.data.preprocess import BadImage, decode_photo
from prodgen.edit.colourways import NoProductFound, colourways, distinct_colours, parse_colour, product_colours
from prodgen.edit.style import DEFAULT_SIZE, DEFAULT_STRENGTH, stylise
from prodgen.edit.translate import parse_hole
from prodgen.errors import ProdgenError
from prodgen.generate.jobs import Job, Row, read_plan
from prodgen.generate.metadata import image_record
from prodgen.generate.outputs import FORMATS, encoded_files
from prodgen.generate.postprocess import Step, apply_chain
from prodgen.generate.variants import neighbourhood, seed_anchor, walk
from prodgen.serve.batching import InferenceWorker
from prodgen.serve.jobs import DONE, JobRecord, JobRunner, JobStore, zip_stream
from prodgen.serve.limits import (
    DEFAULT_GATYS_STEPS,
    GATYS_BUDGET,
    MAX_COLOURWAYS,
    MAX_FEATHER,
    MAX_GATYS_STEPS,
    MAX_OUTPUT_PIXELS,
    MAX_STYLE_SIZE,
    check_colourways,
    check_gatys_steps,
    served_chain,
)
from prodgen.serve.middleware import ServeMetrics
from prodgen.serve.models import ModelRegistry, ServedModel
from prodgen.serve.schemas import (
    SEED_LIMIT,
    Colourway,
    ColourwayResponse,
    EncodedImage,
    ErrorResponse,
    GeneratedImage,
    GenerateRequest,
    GenerateResponse,
    Health,
    ImageFormat,
    ImageMetadata,
    InterpolateRequest,
    InterpolateResponse,
    JobRequest,
    JobStatus,
    ModelsResponse,
    PhotoResult,
    StyleMethod,
    StyliseResult,
    VariantsRequest,
    VariantsResponse,
)
from prodgen.serve.settings import MAX_UPLOAD_BYTES, ServeSettings
from prodgen.serve.uploads import read_photo

MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
STUDIO = pathlib.Path(__file__).parent / "static"
# The studio loads nothing but the server's own files, and shows images from data: and blob: URLs
STUDIO_POLICY = ("default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; form-action 'none'; "
                 "frame-ancestors 'none'")
ERRORS = {status: {"model": ErrorResponse} for status in (401, 413, 422)}  # a wrong API key, a body over the limit, bad input
UPLOAD_ERRORS = {415: {"model": ErrorResponse, "description": "The upload is not an image of an accepted format."}}


@dataclass
class ServeState:
    """Everything one app holds, built by create_app: no module-level state."""

    settings: ServeSettings
    models: ModelRegistry
    metrics: ServeMetrics
    workers: dict[str, InferenceWorker]
    jobs: JobStore
    runner: JobRunner


def serve_state(request: Request) -> ServeState:
    return request.app.state.serve


router = APIRouter(responses=ERRORS)
v1 = APIRouter(prefix="/v1", responses=ERRORS)


@router.get("/", response_class=FileResponse, include_in_schema=False)
def studio() -> FileResponse:
    """The web studio: a page over this API (its files under /static/)."""
    return FileResponse(STUDIO / "index.html", headers={"Content-Security-Policy": STUDIO_POLICY})


@router.get("/healthz", response_model=Health)
def health(state: ServeState = Depends(serve_state)) -> Health:
    return Health(models=len(state.models.models))


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}})
def metrics(state: ServeState = Depends(serve_state)) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@v1.get("/models", response_model=ModelsResponse)
def list_models(state: ServeState = Depends(serve_state)) -> ModelsResponse:
    return ModelsResponse(models=[model.describe() for model in state.models.models.values()])


# Encoding this many pixels, with no post-processing, takes about a millisecond on one core (0.2 ms for
# one 64x64 colour PNG): less than the hop to the thread pool and back, so it is done on the event loop.
INLINE_ENCODE_PIXELS = 4 * 64 * 64


@v1.post("/generate", response_model=GenerateResponse)
async def generate(body: GenerateRequest, state: ServeState = Depends(serve_state)) -> GenerateResponse:
    """New product images, each with the metadata `prodgen regenerate` rebuilds it from; the same
    request always gives the same bytes."""
    served = state.models.generator(body.model)
    height, width, _ = served.spec["output_size"]
    steps = served_chain(body.post, height, width, body.n)
    # on the event loop: codes cost microseconds when every condition is asked, the latents are drawn by the worker;
    # an unknown category raises here, before anything is queued
    codes = served.generator.codes_for(body.n, body.query(), body.seed, body.first_index)
    pixels = await asyncio.wrap_future(state.workers[served.name].submit(codes, body.seed, body.first_index, body.truncation))
    state.metrics.images.labels(served.name).inc(len(pixels))
    if not steps and body.n * height * width <= INLINE_ENCODE_PIXELS:
        return generated_images(served, body, steps, codes.tolist(), pixels)
    return await run_in_threadpool(generated_images, served, body, steps, codes.tolist(), pixels)


def generated_images(served: ServedModel, body: GenerateRequest, steps: list[Step], codes: list[list[int]], pixels: np.ndarray) -> GenerateResponse:
    """Post-processed and encoded as `prodgen generate` writes them (prodgen.generate.jobs)."""
    generator, query = served.generator, body.query()
    naming = Row(query, body.first_index + body.n, body.seed)
    images = []
    for offset, (image, row_codes) in enumerate(zip(pixels, codes)):
        index = body.first_index + offset
        record = image_record(model=served.metadata_name, model_sha256=generator.weights_sha256, seed=body.seed, index=index, asked=dict(query),
                              conditions=generator.conditions.decode(row_codes), truncation=body.truncation, post=[str(step) for step in steps],
                              backend=generator.backend, format=body.format)
        _, data, _ = encoded_files(apply_chain(image, steps), record)
        images.append(GeneratedImage(index=index, file_name=naming.file_stem(index) + FORMATS[body.format][0],
                                     media_type=MEDIA_TYPES[body.format], data=base64.b64encode(data).decode("ascii"), metadata=ImageMetadata(**record)))
    return GenerateResponse(model=served.name, images=images)


@v1.post("/variants", response_model=VariantsResponse)
def variants(body: VariantsRequest, state: ServeState = Depends(serve_state)) -> VariantsResponse:
    """Variants of image `index` of a seed ("more like this")."""
    generator = state.models.generator(body.model).generator
    anchor = seed_anchor(generator, body.seed, body.index, body.query())
    codes = neighbourhood(anchor, body.n, body.distance, body.variant_seed)
    base, drawn = generator.draw(anchor.z, anchor.codes)[0], generator.draw(codes, anchor.codes.expand(body.n, -1))
    return VariantsResponse(model=body.model, base=png(base), variants=[png(image) for image in drawn],
                            latent_distances=[round(float(d), 4) for d in (codes - anchor.z).norm(dim=1)], conditions=anchor.report["conditions"])


@v1.post("/interpolate", response_model=InterpolateResponse)
def interpolate(body: InterpolateRequest, state: ServeState = Depends(serve_state)) -> InterpolateResponse:
    """A walk in latent space between two generated products."""
    generator = state.models.generator(body.model).generator
    first = seed_anchor(generator, body.start.seed, body.start.index, body.query())
    last = seed_anchor(generator, body.end.seed, body.end.index, body.query())
    frames = generator.draw(*walk(first, last, body.steps, body.method))
    return InterpolateResponse(model=body.model, frames=[png(frame) for frame in frames], conditions=[first.report["conditions"], last.report["conditions"]])


@v1.post("/reconstruct", response_model=PhotoResult, responses=UPLOAD_ERRORS)
def reconstruct(model: str = Form(description="A served VAE or VAE-GAN."), photo: UploadFile = File(description="A product photo, at most 10 MB."),
                category: str | None = Form(None, description="The photo's category (default: read by the catalog's classifier)."),
                attr: list[str] = Form([], description="Another condition of the photo, NAME=VALUE (repeatable)."),
                state: ServeState = Depends(serve_state)) -> PhotoResult:
    """Encode a product photo and decode it: what the model makes of it."""
    served = state.models.autoencoder(model)
    image = served.photo_input(read_photo(photo, "photo"), "photo")[None]
    codes = served.autoencoder.photos.own_codes(image, conditions_of(category, attr))
    rebuilt = served.autoencoder.reconstruct(image, codes)[0]
    return PhotoResult(model=model, image=png(rebuilt), model_input=png(image[0]), conditions=served.generator.conditions.decode(codes[0]))


@v1.post("/translate", response_model=PhotoResult, responses=UPLOAD_ERRORS)
def translate(model: str = Form(description="A served pix2pix or CycleGAN model."), photo: UploadFile = File(description="A drawing, edge map, "
              "grey photo or product photo, at most 10 MB."),
              from_photo: bool = Form(False, description="The upload is a product photo: compute the model's view of it as training did."),
              hole: str | None = Form(None, description="Completion models: the region to fill, LEFT,TOP,WIDTH,HEIGHT as shares of the image."),
              seed: int = Form(0, ge=0, description="Seed of a completion model's random region."),
              direction: str | None = Form(None, description="CycleGAN models: a-to-b (default) or b-to-a."),
              state: ServeState = Depends(serve_state)) -> PhotoResult:
    """Turn a sketch (edges, a grey photo, a photo with a hole) into a product, or a photo of one domain into the other."""
    translator = state.models.translator(model, direction)
    chosen_hole = parse_hole(hole) if hole is not None else None
    if chosen_hole is not None and not translator.view.random:
        raise ProdgenError(f"hole is for completion (inpaint) models; {model} translates {translator.view.name}.")
    image = state.models.get(model).photo_input(read_photo(photo, "photo"), "photo")[None]
    views = translator.views_of(image, from_photo, chosen_hole, seed)
    product = translator.translate(views)[0]
    shown = views[0][..., :3] if views.shape[-1] >= 3 else views[0]  # an inpainting view's hole channel is not shown
    return PhotoResult(model=model, image=png(product), model_input=png(shown))


@v1.post("/mask", response_model=PhotoResult, responses=UPLOAD_ERRORS)
def mask(photo: UploadFile = File(description="A product photo, at most 10 MB and 40 megapixels."),
         tolerance: int = Form(24, ge=0, le=255, description="How far from the border's colour a plain background may stray (levels)."),
         ) -> PhotoResult:
    """Where the product is: a mask (white = product) and a cut-out with a transparent background, at the photo's size."""
    image = decoded_photo(photo, "photo")
    found, method = product_mask(image, tolerance)
    return PhotoResult(image=png((found * 255).astype(np.uint8)[..., None]), cutout=png(cutout(image, found)), method=method)


@v1.post("/colourway", response_model=ColourwayResponse, responses=UPLOAD_ERRORS)
def colourway(photo: UploadFile = File(description="A product photo, at most 10 MB and 40 megapixels."),
              colour: list[str] = Form([], description="A target colour: a CSS name (navy, seagreen) or hex (#2e8b57, #fc0; '#' optional); "
                                                       f"repeatable. At most {MAX_COLOURWAYS} colours in all, and all colourways together "
                                                       f"at most {MAX_OUTPUT_PIXELS:,} pixels (the photo's pixels times the colours)."),
              like: UploadFile | None = File(None, description="Another product's photo: its main colour(s) are made too, named by hex."),
              like_colours: int = Form(1, ge=1, le=MAX_COLOURWAYS, description="How many of the `like` product's main colours to make."),
              feather: int = Form(0, ge=0, le=MAX_FEATHER, description="Blend the new colour in over this many pixels inside the product's "
                                                                       "outline (0: a hard edge; the background is never touched)."),
              tolerance: int = Form(24, ge=0, le=255, description="How far from the border's colour a plain background may stray (levels)."),
              ) -> ColourwayResponse:
    """The product of a photo in other colours, its shading and texture kept (`prodgen colourway`)."""
    image = decoded_photo(photo, "photo")
    colours = [parse_colour(text) for text in colour]
    if like is not None:
        try:
            colours += product_colours(decoded_photo(like, "like"), like_colours, tolerance)
        except NoProductFound as exc:
            raise ProdgenError(f"like: {exc}.") from None
    if not colours:
        raise ProdgenError("Say which colours to make: colour (a CSS name or hex, repeatable) or a like photo.")
    unique = distinct_colours(colours)  # as `prodgen colourway` names its files
    check_colourways(len(unique), *image.shape[:2])
    try:
        made = colourways(image, unique, feather, tolerance)
    except NoProductFound as exc:
        raise ProdgenError(f"photo: {exc}; a lower tolerance takes fewer pixels for background.") from None
    return ColourwayResponse(colourways=[Colourway(**png(recoloured).model_dump(), colour=target.label, rgb="#{:02x}{:02x}{:02x}".format(*target.rgb))
                                        for target, recoloured in zip(unique, made)])


@v1.post("/stylise", response_model=StyliseResult, responses=UPLOAD_ERRORS)
def stylise_photo(content: UploadFile = File(description="The product photo, at most 10 MB and 40 megapixels."),
                  style: UploadFile = File(description="The style image (a fabric, a print, a painting), at most 10 MB and 40 megapixels."),
                  method: StyleMethod = Form("adain", description="adain: one forward pass, under a second; gatys: optimisation, `steps` of it."),
                  keep_background: bool = Form(False, description="Stylise only the product; every pixel outside it stays the photo's own."),
                  size: int = Form(DEFAULT_SIZE, ge=32, le=MAX_STYLE_SIZE, description="Longer side, in pixels, at which the style is computed "
                                                                                      f"(32-{MAX_STYLE_SIZE}); the result has the photo's size."),
                  steps: int = Form(DEFAULT_GATYS_STEPS, ge=1, le=MAX_GATYS_STEPS, description=f"gatys: optimisation steps, at most "
                                    f"{MAX_GATYS_STEPS}, and steps x size^2 at most {GATYS_BUDGET:,} ({GATYS_BUDGET // 512**2} at 512), so that "
                                    "a request takes seconds, not minutes."),
                  strength: float | None = Form(None, ge=0, le=1, description="0 (the photo) to 1 (all style); default 1 for adain, 0.8 for gatys."),
                  ) -> StyliseResult:
    """Draw a product photo in the style of another image (`prodgen stylise`), with the default feature network:
    the others name files on the server."""
    if method == "gatys":
        check_gatys_steps(steps, size)
    photo, look = decoded_photo(content, "content"), decoded_photo(style, "style")
    strength = DEFAULT_STRENGTH[method] if strength is None else strength
    pixels = stylise(photo, look, method=method, size=size, steps=steps, strength=strength, keep_background=keep_background)
    return StyliseResult(image=png(pixels), method=method, size=size, steps=steps if method == "gatys" else None, strength=strength)


def decoded_photo(upload: UploadFile, field: str) -> np.ndarray:
    """An uploaded photo's pixels (H, W, 1|3 uint8) at its own size, after the upload checks."""
    try:
        return decode_photo(read_photo(upload, field))
    except BadImage as exc:
        raise ProdgenError(f"{field} is not a usable image: {exc}") from None


def conditions_of(category: str | None, attributes: list[str]) -> dict[str, str]:
    query = {"category": category} if category else {}
    for item in attributes:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise HTTPException(422, f"Invalid attr {item!r}: use NAME=VALUE, e.g. colour=red.")
        query[name.strip()] = value.strip()
    return query


def png(pixels: np.ndarray) -> EncodedImage:
    """An (H, W, 1|3|4) uint8 image as a base64 PNG."""
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, format="PNG")
    return EncodedImage(media_type="image/png", data=base64.b64encode(buffer.getvalue()).decode("ascii"))


# ----- batch jobs ----------------------------------------------------------------------------------

JOB_ID = Path(pattern="^[0-9a-f]{32}$", description="The id the server gave the job.")


@v1.post("/jobs", response_model=JobStatus, status_code=202)
def submit_job(body: JobRequest, state: ServeState = Depends(serve_state)) -> JobStatus:
    """Queue a batch job: rows of (conditions, count, seed). Its images are made in the background;
    poll GET /v1/jobs/{id}, then fetch the ZIP."""
    rows = [Row(row.query(), row.count, body.seed + k if row.seed is None else row.seed) for k, row in enumerate(body.rows)]
    return queue_job(state, body.model, rows, body.truncation, body.post, body.format, body.tar)


@v1.post("/jobs/plan", response_model=JobStatus, status_code=202)
def submit_plan(model: str = Form(description="A served generator's name."),
                plan: UploadFile = File(description="CSV: a count column, condition columns (category, attributes), optionally seed."),
                seed: int = Form(0, ge=0, lt=SEED_LIMIT, description="Row k without a seed uses seed + k."),
                truncation: float = Form(1.0, gt=0, le=1), post: str = Form(""), format: ImageFormat = Form("png"), tar: bool = Form(False),
                state: ServeState = Depends(serve_state)) -> JobStatus:
    """Queue a batch job from a plan CSV, as `prodgen generate --plan` reads it."""
    data = plan.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, f"plan is over the upload limit of {MAX_UPLOAD_BYTES // 2**20} MB.")
    return queue_job(state, model, plan_rows(data, seed, state.settings.data_dir), truncation, post, format, tar)


def plan_rows(data: bytes, seed: int, scratch: pathlib.Path) -> list[Row]:
    """The library reads plans from files: the upload goes to a file of the server's naming, removed at once."""
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        path = pathlib.Path(folder) / "plan.csv"
        path.write_bytes(data)
        try:
            return read_plan(path, seed)
        except ProdgenError as exc:
            raise ProdgenError(str(exc).replace(str(path), path.name)) from None  # no server path in the answer


def queue_job(state: ServeState, model: str, rows: list[Row], truncation: float, post: str, image_format: str, tar: bool) -> JobStatus:
    """Everything a job could fail on is checked before it is queued: the model, each row's conditions, the chain, the size."""
    served = state.models.generator(model)
    height, width, _ = served.spec["output_size"]
    served_chain(post, height, width, 1)  # images are made and written one at a time
    total = sum(row.count for row in rows)
    if total > state.settings.max_job_images:
        raise HTTPException(422, f"The job asks for {total:,} images; this server makes at most {state.settings.max_job_images:,} per job.")
    for row in rows:
        served.generator.codes_for(1, row.asked, row.seed)
    job = Job(model=served.metadata_name, rows=rows, truncation=truncation, format=image_format, post=post, backend=served.generator.backend, tar=tar)
    record = state.jobs.add(served.name, job)
    state.runner.wake.set()
    return job_status(record)


@v1.get("/jobs/{job_id}", response_model=JobStatus, responses={404: {"model": ErrorResponse, "description": "No job has this id."}})
def get_job(job_id: str = JOB_ID, state: ServeState = Depends(serve_state)) -> JobStatus:
    return job_status(known_job(state, job_id))


@v1.get("/jobs/{job_id}/result", response_class=StreamingResponse, responses={200: {"content": {"application/zip": {}}, "description": "The images, "
        "their JSON metadata, manifest.jsonl and a contact sheet."}, 404: {"model": ErrorResponse, "description": "No job has this id."},
        409: {"model": ErrorResponse, "description": "The job is not done yet."}})
def job_result(job_id: str = JOB_ID, state: ServeState = Depends(serve_state)) -> StreamingResponse:
    """A finished job's images as a ZIP, streamed as it is made."""
    record = known_job(state, job_id)
    if record.state != DONE:
        raise HTTPException(409, f"Job {record.id} is {record.state} ({record.done:,} of {record.total:,} images): its result is ready when it is done."
                                 + (f" It failed: {record.error}" if record.error else ""))
    folder = state.runner.folder(record.id)  # from the database's id, not from the request's path
    return StreamingResponse(zip_stream(folder), media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="job-{record.id}.zip"'})


def known_job(state: ServeState, job_id: str) -> JobRecord:
    record = state.jobs.get(job_id)
    if record is None:
        raise HTTPException(404, f"No job {job_id}.")
    return record


def job_status(record: JobRecord) -> JobStatus:
    return JobStatus(id=record.id, state=record.state, model=record.model, total=record.total, done=record.done,
                     progress=round(record.done / record.total, 4), attempts=record.attempts, error=record.error, created_at=record.created_at,
                     started_at=record.started_at, finished_at=record.finished_at, result=f"/v1/jobs/{record.id}/result" if record.state == DONE else None)
