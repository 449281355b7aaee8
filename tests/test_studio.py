"""The web studio end to end, in headless Chromium: Debian's `chromium` package, driven by Playwright
for Python through its executable_path (Playwright's own browser download is never used). A uvicorn
server in a background thread serves the shipped fmnist-cgan and a pix2pix model trained for one step
on the tiny catalog, behind an API key. Each test clicks through one screen as a person would and
checks what the page shows against what the API says; every page may load only the server's own
files and must log no error.

Set PRODGEN_STUDIO_SCREENSHOTS=docs/images/studio to save a screenshot of each screen there."""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prodgen.serve.app import create_app
from prodgen.serve.settings import ServeSettings
from prodgen.train.loop import train

from .test_serve_edit import packshot, png_bytes, stripes
from .test_translate import tiny_pix2pix

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install -e '.[dev]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (Debian: apt-get install chromium)")
torch.set_num_threads(1)

API_KEY = "studio-test-key"
SCREENSHOTS = os.environ.get("PRODGEN_STUDIO_SCREENSHOTS")
VIEWPORT = {"width": 1280, "height": 820}


@pytest.fixture(scope="module")
def server(tiny_home, tmp_path_factory):
    """The studio's address: an app with a generator and a sketch translator, in uvicorn on a free port."""
    import uvicorn

    sketcher = train(tiny_pix2pix(train__steps=1), runs_root=tmp_path_factory.mktemp("runs"), show_progress=False).run_dir
    settings = ServeSettings(models=["fmnist-cgan", f"sketcher={sketcher}"], backend="eager", data_dir=tmp_path_factory.mktemp("serve"),
                             api_key=API_KEY)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # bound here and handed over: no other process can take the port in between
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the studio's server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    server.should_exit = True
    thread.join(30)
    listener.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


class Studio:
    """One browser tab on the studio, with what it requested and what it logged as an error."""

    def __init__(self, browser, base: str, key: str | None):
        self.base = base
        self.context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        if key is not None:  # as if the key had been given once in this tab already
            self.context.add_init_script(f"sessionStorage.setItem('prodgen-api-key', {key!r})")
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.requested: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)

    def open(self, screen: str = "generate"):
        self.page.goto(f"{self.base}/#{screen}")
        sync_api.expect(self.page.get_by_role("status")).to_contain_text("model(s) served")
        return self.page

    def screen(self, name: str):
        return self.page.locator(f"#{name}")

    def screenshot(self, name: str) -> None:
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requested if not url.startswith((self.base + "/", "data:", "blob:"))]


@pytest.fixture
def studio(browser, server):
    """A tab that already holds the API key; afterwards it must have loaded nothing from elsewhere and logged no error."""
    tab = Studio(browser, server, API_KEY)
    yield tab
    tab.context.close()
    assert tab.foreign_requests() == []
    assert tab.errors == []


def image_of(source: str) -> np.ndarray:
    """An <img>'s data: URL as pixels."""
    header, data = source.split(",", 1)
    assert header.startswith("data:image/png;base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


def test_the_page_asks_for_the_api_key_once_and_sends_it(browser, server):
    tab = Studio(browser, server, key=None)
    page = tab.page
    page.goto(server)
    dialog = page.get_by_role("dialog", name="API key")
    sync_api.expect(dialog).to_be_visible()
    dialog.get_by_label("Key").fill("not-the-key")
    dialog.get_by_role("button", name="Continue").click()
    sync_api.expect(dialog.get_by_role("alert")).to_contain_text("not accepted")
    dialog.get_by_label("Key").fill(API_KEY)
    dialog.get_by_role("button", name="Continue").click()
    sync_api.expect(page.get_by_role("status")).to_contain_text("2 model(s) served: fmnist-cgan, sketcher")
    sync_api.expect(tab.screen("generate").get_by_label("Model")).to_have_value("fmnist-cgan")
    page.reload()  # asked once: the tab keeps the key
    sync_api.expect(page.get_by_role("status")).to_contain_text("2 model(s) served")
    assert not dialog.is_visible()
    tab.context.close()
    assert tab.foreign_requests() == []
    assert [error for error in tab.errors if "401" not in error] == []  # the two refused calls are logged by the browser


def test_generate_a_grid_then_an_images_metadata_variants_and_colourways(studio):
    page, screen = studio.open("generate"), studio.screen("generate")
    screen.get_by_label("Category").select_option("Dress")
    screen.get_by_label("Images", exact=True).fill("8")
    screen.get_by_label("Seed").fill("7")
    screen.get_by_role("button", name="Generate").click()
    thumbnails = screen.get_by_role("list", name="Generated images").get_by_role("button")
    sync_api.expect(thumbnails).to_have_count(8)
    thumbnails.nth(2).click()
    details = screen.get_by_role("complementary")
    sync_api.expect(details.get_by_role("heading", name="Dress-7-0002.png")).to_be_visible()
    metadata = details.locator("dl").evaluate("list => Object.fromEntries([...list.querySelectorAll('dt')].map(term => "
                                              "[term.textContent, term.nextElementSibling.textContent]))")
    assert {name: metadata[name] for name in ("Model", "Seed", "Index", "Conditions", "Backend")} == {
        "Model": "fmnist-cgan", "Seed": "7", "Index": "2", "Conditions": "category: Dress", "Backend": "eager"}
    served = page.request.post(f"{studio.base}/v1/generate", headers={"X-API-Key": API_KEY},
                               data={"model": "fmnist-cgan", "category": "Dress", "n": 3, "seed": 7}).json()["images"][2]
    download = details.get_by_role("link", name="Download PNG")
    assert download.get_attribute("download") == "Dress-7-0002.png"
    assert download.get_attribute("href") == f"data:image/png;base64,{served['data']}"  # the API's bytes, metadata embedded

    details.get_by_label("Variants", exact=True).fill("4")
    details.get_by_role("button", name="Make variants").click()
    sync_api.expect(details.get_by_role("list", name="Variants of this image").get_by_role("img")).to_have_count(4)
    details.get_by_label("Colours (CSS names or hex)").fill("navy, crimson")
    details.get_by_role("button", name="Recolour").click()
    colourways = details.get_by_role("list", name="Colourways of this image")
    sync_api.expect(colourways.get_by_role("img")).to_have_count(2)
    crimson = image_of(colourways.get_by_role("img", name="crimson").get_attribute("src"))
    assert crimson.shape == (28, 28, 3) and (crimson[..., 0].astype(int) - crimson[..., 2]).max() > 60  # red where the product is
    studio.screenshot("generate")


def test_recolour_mask_and_stylise_an_uploaded_photo(studio, tmp_path):
    (tmp_path / "coat.png").write_bytes(png_bytes(packshot(size=96)))
    (tmp_path / "stripes.png").write_bytes(png_bytes(stripes(64)))
    studio.open("photo")
    screen = studio.screen("photo")
    screen.get_by_label("Product photo").set_input_files(tmp_path / "coat.png")
    sync_api.expect(screen.get_by_role("img", name="The uploaded photo")).to_be_visible()
    results = screen.get_by_role("list", name="Results").get_by_role("img")
    recolour = screen.locator("#photo-colourway-form")
    recolour.get_by_label("Colours (CSS names or hex)").fill("navy, #2e8b57")
    recolour.get_by_role("button", name="Recolour").click()
    sync_api.expect(results).to_have_count(2)
    navy = image_of(screen.get_by_role("img", name="coat.png in navy").get_attribute("src"))
    assert navy.shape == (96, 96, 3) and navy[48, 48, 2] > navy[48, 48, 0]  # the product's middle turned blue
    screen.get_by_role("button", name="Find the product").click()
    sync_api.expect(results).to_have_count(4)
    assert image_of(screen.get_by_role("img", name="Cut-out of coat.png").get_attribute("src"))[0, 0, 3] == 0  # transparent background
    stylise = screen.locator("#stylise-form")
    stylise.get_by_label("Style image").set_input_files(tmp_path / "stripes.png")
    stylise.get_by_label("Size").fill("64")
    stylise.get_by_role("button", name="Stylise").click()
    sync_api.expect(results).to_have_count(5)
    assert image_of(results.first.get_attribute("src")).shape == (96, 96, 3)  # newest first, at the photo's size
    studio.screenshot("photo")


def test_draw_a_sketch_and_get_a_product_from_the_translator(studio):
    page = studio.open("sketch")
    screen = studio.screen("sketch")
    sync_api.expect(screen.get_by_label("Translator")).to_have_value("sketcher")
    screen.get_by_label("Pen width").fill("16")
    box = screen.get_by_role("img", name="Drawing area").bounding_box()
    outline = [(0.3, 0.2), (0.7, 0.2), (0.8, 0.85), (0.2, 0.85), (0.3, 0.2)]  # a dress-like trapezium
    page.mouse.move(box["x"] + outline[0][0] * box["width"], box["y"] + outline[0][1] * box["height"])
    page.mouse.down()
    for x, y in outline[1:]:
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
    page.mouse.up()
    screen.get_by_role("button", name="Make a product").click()
    results = screen.get_by_role("list", name="Translation")
    sync_api.expect(results.get_by_role("img")).to_have_count(2)
    seen = image_of(results.get_by_role("img", name="What the model saw").get_attribute("src"))
    product = image_of(results.get_by_role("img", name="Product by sketcher").get_attribute("src"))
    assert seen.shape == (16, 16) and seen.min() < 200 and seen.max() == 255  # the drawing's lines on white paper
    assert product.shape == (16, 16, 3)
    studio.screenshot("sketch")


def test_follow_a_job_to_done_and_download_its_zip(studio):
    page = studio.open("jobs")
    screen = studio.screen("jobs")
    screen.get_by_label("Category").select_option("Bag")
    screen.get_by_label("Images", exact=True).fill("6")
    screen.get_by_role("button", name="Start job").click()
    job = screen.get_by_role("list", name="Jobs").get_by_role("listitem").first
    sync_api.expect(job).to_contain_text("done: 6 of 6")
    assert job.get_by_role("progressbar").evaluate("bar => bar.value") == 1
    with page.expect_download() as downloading:
        job.get_by_role("button", name="Download the ZIP").click()
    download = downloading.value
    assert download.suggested_filename.startswith("job-") and download.suggested_filename.endswith(".zip")
    with zipfile.ZipFile(download.path()) as archive:
        members = set(archive.namelist())
    assert {f"Bag-0-000{i}.png" for i in range(6)} | {"manifest.jsonl"} <= members
    studio.screenshot("jobs")


def test_the_screens_are_tabs_that_the_keyboard_moves_between(studio):
    page = studio.open("generate")
    tab = page.get_by_role("tab", name="Generate")
    tab.focus()
    page.keyboard.press("ArrowRight")
    sync_api.expect(page.get_by_role("tab", name="Photo")).to_be_focused()
    sync_api.expect(page.get_by_role("tab", name="Photo")).to_have_attribute("aria-selected", "true")
    sync_api.expect(studio.screen("photo")).to_be_visible()
    sync_api.expect(studio.screen("generate")).to_be_hidden()
    page.keyboard.press("End")
    sync_api.expect(studio.screen("jobs")).to_be_visible()
    page.keyboard.press("ArrowRight")  # round to the first
    sync_api.expect(studio.screen("generate")).to_be_visible()
    assert page.url.endswith("#generate")
