"""What a request may ask of the server beyond the library's own checks: post-processing that reads
no server file and whose output fits in memory, colourways that fit in memory, and style transfer
that answers in seconds."""

from __future__ import annotations

from fastapi import HTTPException

from prodgen.generate.postprocess import Step, parse_chain

MAX_OUTPUT_PIXELS = 2**26  # all images of one request after post-processing: 64 Mpx, about 200 MB of RGB
SERVER_FILE_STEPS = ("superres",)  # steps whose argument is a path on the server
MAX_COLOURWAYS = 16  # colours per colourway request
MAX_FEATHER = 64  # pixels of a colourway's blended outline
MAX_STYLE_SIZE = 512  # the longer side style is computed at: AdaIN takes under a second there
MAX_GATYS_STEPS = 100
DEFAULT_GATYS_STEPS = 50  # the library's default (200) is over the cap
# Gatys' optimisation costs steps x size^2: a step at 256 px took 0.36 s on one busy CPU core, so a
# request may ask for 100 of them (about 36 s) or the same work at another size (25 steps at 512 px)
GATYS_BUDGET = MAX_GATYS_STEPS * 256**2


def served_chain(text: str, height: int, width: int, count: int) -> list[Step]:
    """The post-processing chain of a request, parsed by the library, for `count` images of
    height x width. A step that reads a file is refused before the library would open it."""
    names = {item.strip().partition(":")[0] for item in text.split(",")}
    refused = sorted(names & set(SERVER_FILE_STEPS))
    if refused:
        raise HTTPException(422, f"Post-processing step {refused[0]} reads a file on the server and is not available through the API.")
    steps = parse_chain(text)
    pixels = count * output_pixels(height, width, steps)
    if pixels > MAX_OUTPUT_PIXELS:
        raise HTTPException(422, f"post {text!r} would make {pixels:,} pixels for {count} image(s), over the limit of {MAX_OUTPUT_PIXELS:,} "
                                 "per request: ask for fewer images or a smaller upscale.")
    return steps


def output_pixels(height: int, width: int, steps: list[Step]) -> int:
    """The pixels of one image after the chain: only upscale and pad change the size (prodgen.generate.postprocess)."""
    for step in steps:
        if step.name == "upscale":
            scale = step.value / max(height, width)
            height, width = max(1, round(height * scale)), max(1, round(width * scale))
        elif step.name == "pad":
            ratio_w, ratio_h = step.value
            k = max(-(-width // ratio_w), -(-height // ratio_h))
            height, width = k * ratio_h, k * ratio_w
    return height * width


def check_colourways(count: int, height: int, width: int) -> None:
    """Every colourway is a full-size copy of the photo: all of them together within MAX_OUTPUT_PIXELS."""
    if count > MAX_COLOURWAYS:
        raise HTTPException(422, f"{count} colours asked; this server makes at most {MAX_COLOURWAYS} colourways per request.")
    if count * height * width > MAX_OUTPUT_PIXELS:
        raise HTTPException(422, f"{count} colourways of a {width}x{height} photo would make {count * height * width:,} pixels, over the limit of "
                                 f"{MAX_OUTPUT_PIXELS:,} per request: ask for fewer colours or send a smaller photo.")


def check_gatys_steps(steps: int, size: int) -> None:
    allowed = GATYS_BUDGET // size**2
    if steps > allowed:
        raise HTTPException(422, f"gatys at size {size} may take at most {allowed} steps on this server (steps x size^2 at most "
                                 f"{GATYS_BUDGET:,}): ask for fewer steps or a smaller size.")
