"""The service's photo edits through FastAPI's test client: /v1/colourway and /v1/stylise give the
pixels of `prodgen colourway` and `prodgen stylise`, refuse what the server will not do (unknown
colours, no product, requests over the caps) with a 4xx that says why, and are counted in /metrics;
and the web studio's files: served at / and /static/ without the API key, loading nothing from
elsewhere."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from prodgen.data.masks import product_mask
from prodgen.serve.app import create_app
from prodgen.serve.limits import GATYS_BUDGET, MAX_COLOURWAYS, MAX_GATYS_STEPS, MAX_STYLE_SIZE
from prodgen.serve.routes import STUDIO
from prodgen.serve.settings import ServeSettings

from .conftest import invoke
from .test_serve import decode, error_of, tiny_translator

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    translator = tiny_translator(tmp_path_factory.mktemp("models") / "edges")
    settings = ServeSettings(models=["fmnist-cgan", f"sketcher={translator}"], backend="eager", data_dir=tmp_path_factory.mktemp("serve"))
    with TestClient(create_app(settings)) as client:
        yield client


def packshot(colour: tuple[int, int, int] = (170, 40, 50), size: int = 48) -> np.ndarray:
    """A shaded garment-like ellipse with a dark stripe on a light floor."""
    yy, xx = np.mgrid[:size, :size]
    image = np.full((size, size, 3), 236, np.uint8)
    inside = ((yy - size / 2) / (size * 0.38)) ** 2 + ((xx - size / 2) / (size * 0.28)) ** 2 <= 1
    image[inside] = (np.array(colour) * (0.6 + 0.4 * yy[inside, None] / size)).astype(np.uint8)
    image[inside & (np.abs(yy - size / 2) < 3)] = (30, 30, 80)
    return image


def stripes(size: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.where((((xx + yy) // 3) % 2 == 0)[..., None], [30, 160, 60], [240, 220, 40]).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def written(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# ----- colourway -----------------------------------------------------------------------------------


def test_colourways_are_the_pixels_of_prodgen_colourway_with_the_colours_asked(served, tmp_path):
    photo, like = packshot(), packshot(colour=(30, 120, 200))
    (tmp_path / "coat.png").write_bytes(png_bytes(photo))
    (tmp_path / "like.png").write_bytes(png_bytes(like))
    response = served.post("/v1/colourway", data={"colour": ["navy", "#FC0", "Navy"], "feather": "2"},
                           files={"photo": ("coat.png", png_bytes(photo)), "like": ("like.png", png_bytes(like))})
    assert response.status_code == 200, response.text
    made = response.json()["colourways"]
    assert [(entry["colour"], entry["rgb"]) for entry in made[:2]] == [("navy", "#000080"), ("FC0", "#ffcc00")]  # "Navy" is navy again: made once
    assert len(made) == 3 and made[2]["rgb"] == "#" + made[2]["colour"]  # the like photo's main colour, by its hex
    red, green, blue = bytes.fromhex(made[2]["colour"])
    assert blue > green > red  # the product's (30, 120, 200), shaded
    cli = invoke("colourway", "--input", tmp_path / "coat.png", "--to", "navy", "--to", "#FC0", "--like", tmp_path / "like.png", "--feather", 2,
                 "--out", tmp_path / "out")
    assert cli.exit_code == 0, cli.output
    background = ~product_mask(photo)[0]
    for entry in made:
        pixels = decode(entry)
        assert np.array_equal(pixels, written(tmp_path / "out" / f"coat-{entry['colour']}.png"))
        assert np.array_equal(pixels[background], photo[background])  # only the product changes


def test_a_generated_grey_image_can_be_recoloured(served):
    """The studio sends a generated Fashion-MNIST image's own bytes: a light product on black, one channel."""
    image = served.post("/v1/generate", json={"model": "fmnist-cgan", "category": "Dress", "seed": 1}).json()["images"][0]
    grey = decode(image)
    response = served.post("/v1/colourway", data={"colour": "crimson"}, files={"photo": ("Dress.png", base64.b64decode(image["data"]))})
    assert response.status_code == 200, response.text
    red = decode(response.json()["colourways"][0])
    assert red.shape == (28, 28, 3) and (red[..., 0].astype(int) - red[..., 2]).max() > 60
    assert np.array_equal(red[0, 0], [grey[0, 0]] * 3)  # the black background stays


UPLOADS = {
    "coat": lambda: png_bytes(packshot()),
    "blank": lambda: png_bytes(np.full((30, 40, 3), 236, np.uint8)),
    "12 megapixels": lambda: png_bytes(np.pad(packshot(), ((0, 2952), (0, 3952), (0, 0)), constant_values=236)),
    "no image": lambda: b"not a picture",
}


@pytest.mark.parametrize(("data", "photo", "like", "status", "says"), [
    ({"colour": "blurple"}, "coat", None, 422, "Unknown colour 'blurple'. Did you mean purple"),
    ({}, "coat", None, 422, "Say which colours to make"),
    ({"colour": [f"#{k:06x}" for k in range(MAX_COLOURWAYS + 1)]}, "coat", None, 422, f"at most {MAX_COLOURWAYS} colourways"),
    ({"colour": "navy", "feather": "65"}, "coat", None, 422, "feather: Input should be less than or equal to 64"),
    ({"colour": "navy"}, "blank", None, 422, "photo: no product found"),
    ({}, "coat", "blank", 422, "like: no product found"),
    ({}, "coat", "no image", 415, "like is not an image"),
    ({"colour": "navy"}, "no image", None, 415, "photo is not an image"),
    ({"colour": [f"#{k:06x}" for k in range(6)]}, "12 megapixels", None, 422, "over the limit of 67,108,864 per request"),
])
def test_colourway_refuses_with_a_reason(served, data, photo, like, status, says):
    files = {"photo": ("photo.png", UPLOADS[photo]())} | ({"like": ("like.png", UPLOADS[like]())} if like else {})
    assert says in error_of(served.post("/v1/colourway", data=data, files=files), status)


# ----- stylise -------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {"method": "adain", "size": 64},
    {"method": "adain", "size": 64, "keep_background": True, "strength": 0.5},
    {"method": "gatys", "size": 32, "steps": 3},
])
def test_stylise_gives_the_pixels_of_prodgen_stylise(served, tmp_path, options):
    photo = packshot()
    (tmp_path / "coat.png").write_bytes(png_bytes(photo))
    (tmp_path / "stripes.png").write_bytes(png_bytes(stripes()))
    response = served.post("/v1/stylise", data={key: str(value).lower() for key, value in options.items()},
                           files={"content": ("coat.png", png_bytes(photo)), "style": ("stripes.png", png_bytes(stripes()))})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["method"], result["size"]) == (options["method"], options["size"])
    assert result["steps"] == options.get("steps") and result["strength"] == options.get("strength", {"adain": 1.0, "gatys": 0.8}[options["method"]])
    flags = [item for key, value in options.items() for item in
             ([f"--{key.replace('_', '-')}"] if value is True else [f"--{key.replace('_', '-')}", value])]
    cli = invoke("stylise", "--content", tmp_path / "coat.png", "--style", tmp_path / "stripes.png", "--out", tmp_path / "out.png", *flags)
    assert cli.exit_code == 0, cli.output
    pixels = decode(result["image"])
    assert pixels.shape == photo.shape and np.array_equal(pixels, written(tmp_path / "out.png"))
    assert not np.array_equal(pixels, photo)
    if options.get("keep_background"):
        background = ~product_mask(photo)[0]
        assert np.array_equal(pixels[background], photo[background])


@pytest.mark.parametrize(("data", "says"), [
    ({"size": str(MAX_STYLE_SIZE + 1)}, f"size: Input should be less than or equal to {MAX_STYLE_SIZE}"),
    ({"size": "16"}, "size: Input should be greater than or equal to 32"),
    ({"method": "gatys", "steps": str(MAX_GATYS_STEPS + 1)}, f"steps: Input should be less than or equal to {MAX_GATYS_STEPS}"),
    ({"method": "gatys", "size": "512", "steps": "26"}, "gatys at size 512 may take at most 25 steps"),
    ({"method": "cubist"}, "method: Input should be 'gatys' or 'adain'"),
    ({"strength": "1.5"}, "strength: Input should be less than or equal to 1"),
])
def test_stylise_refuses_requests_over_the_servers_caps(served, data, says):
    files = {"content": ("coat.png", png_bytes(packshot())), "style": ("stripes.png", png_bytes(stripes()))}
    assert says in error_of(served.post("/v1/stylise", data=data, files=files), 422)


def test_stylise_needs_two_images(served):
    content = ("coat.png", png_bytes(packshot()))
    assert "style: Field required" in error_of(served.post("/v1/stylise", files={"content": content}), 422)
    assert "style is not an image" in error_of(served.post("/v1/stylise", files={"content": content, "style": ("s.png", b"GIF? no")}), 415)


def test_the_caps_are_in_the_openapi_schema_and_the_edits_in_metrics(served):
    spec = served.get("/openapi.json").json()

    def form_fields(path: str) -> dict:
        reference = spec["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
        return spec["components"]["schemas"][reference.rsplit("/", 1)[1]]["properties"]

    stylise, colourway = form_fields("/v1/stylise"), form_fields("/v1/colourway")
    assert (stylise["size"]["maximum"], stylise["steps"]["maximum"]) == (MAX_STYLE_SIZE, MAX_GATYS_STEPS)
    assert GATYS_BUDGET == 100 * 256**2 and "25 at 512" in stylise["steps"]["description"]
    assert f"At most {MAX_COLOURWAYS} colours" in colourway["colour"]["description"] and colourway["like_colours"]["maximum"] == MAX_COLOURWAYS
    served.post("/v1/colourway", data={"colour": "navy"}, files={"photo": ("coat.png", png_bytes(packshot()))})
    served.post("/v1/colourway", data={"colour": "blurple"}, files={"photo": ("coat.png", png_bytes(packshot()))})
    text = served.get("/metrics").text
    assert re.search(r'prodgen_requests_total\{method="POST",route="/v1/colourway",status="200"\} [1-9]', text)
    assert re.search(r'prodgen_requests_total\{method="POST",route="/v1/colourway",status="422"\} [1-9]', text)


def test_models_say_what_a_translator_takes(served):
    models = {model["name"]: model for model in served.get("/v1/models").json()["models"]}
    assert (models["sketcher"]["kind"], models["sketcher"]["view"]) == ("translator", "edges")
    assert (models["fmnist-cgan"]["kind"], models["fmnist-cgan"]["view"]) == ("generator", None)


# ----- the studio's files ------------------------------------------------------------------------


def test_the_studio_page_and_its_files_are_served_and_load_nothing_from_elsewhere(served):
    page = served.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    shipped = {path.name for path in STUDIO.iterdir()}
    loaded = set(re.findall(r'(?:src|href)="/static/([^"]+)"', page.text))
    for module in (STUDIO / name for name in shipped if name.endswith(".js")):
        loaded |= set(re.findall(r'from "\./([^"]+)"', module.read_text(encoding="utf-8")))
    assert loaded == shipped - {"index.html"}  # every file is used, every file used is there
    for name in shipped:
        answer = served.get(f"/static/{name}")
        assert answer.status_code == 200, name
        text = re.sub(r'xmlns="[^"]*"', "", answer.text)  # an SVG's namespace is a name, never fetched
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), f"{name} loads from another site"
    assert "Not Found" in error_of(served.get("/static/missing.js"), 404)
    assert "/" not in served.get("/openapi.json").json()["paths"]  # the page is not part of the API


def test_the_studio_needs_no_key_to_load_but_the_api_still_does(tmp_path):
    settings = ServeSettings(models=["fmnist-cgan"], backend="eager", data_dir=tmp_path, api_key="studio-key")
    with TestClient(create_app(settings)) as client:
        assert client.get("/").status_code == 200 and client.get("/static/studio.js").status_code == 200
        assert "API key" in error_of(client.get("/v1/models"), 401)
        assert client.get("/v1/models", headers={"X-API-Key": "studio-key"}).status_code == 200
