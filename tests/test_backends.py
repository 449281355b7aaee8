"""Generation backends: TorchScript and ONNX Runtime programs give the eager images within 1e-3 (in
[0, 1]) at any batch size; `generate --backend` records the backend and `regenerate` uses it again;
`export --format` writes a program that runs on its own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from prodgen.cli import app
from prodgen.errors import ProdgenError
from prodgen.generate.backends import load_forward, program_path
from prodgen.generate.metadata import read_record
from prodgen.generate.pipeline import ProductGenerator
from prodgen.models.spec import build_from_spec


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("home")
        patch.setenv("PRODGEN_HOME", str(home))
        yield home


def unconditional(**arguments) -> ProductGenerator:
    spec = dict(ProductGenerator.load("fmnist-cgan").spec)
    spec["arguments"] = {**spec["arguments"], "cardinalities": [], "width_mult": 8, **arguments}
    spec["conditions"] = {"names": [], "values": []}
    torch.manual_seed(0)
    return ProductGenerator(build_from_spec(spec), spec, "random weights")


def resized() -> ProductGenerator:
    """Resize-convolutions, whose transposed kernel is computed from the 3x3 weights in forward."""
    return unconditional(upsample=["transposed", "nearest", "nearest"])


def full_resolution() -> ProductGenerator:
    """Resize-convolutions up to the output size, then a 3x3 convolution draws the image."""
    return unconditional(upsample="nearest", full_resolution_layer=True)


def fine_noise() -> ProductGenerator:
    """Per-pixel noise drawn from z, with a non-zero filter so that its path shows in the output."""
    generator = unconditional(upsample="nearest", fine_noise=True)
    with torch.no_grad():
        generator.module.fine_noise.filter.weight.normal_(0, 0.1)
    return generator


@pytest.mark.parametrize("backend", ["torchscript", "onnx"])
@pytest.mark.parametrize(
    "make",
    [lambda: ProductGenerator.load("fmnist-cgan"), unconditional, resized, full_resolution, fine_noise],
    ids=["conditional", "unconditional", "resize-convolutions", "full-resolution-layer", "fine-noise"],
)
def test_programs_match_eager_pytorch_at_any_batch_size(home, backend, make):
    generator = make()
    conditional = bool(generator.conditions.names)
    z = torch.randn(300, generator.spec["arguments"]["z_dim"], generator=torch.Generator().manual_seed(1))
    codes = torch.randint(10, (300, 1)) if conditional else None
    program = load_forward(generator.module, generator.spec, generator.weights_sha256, backend)
    assert program_path(generator.weights_sha256, backend).exists()  # cached for the next call
    for n in (1, 7, 300):
        with torch.no_grad():
            eager = generator.module(z[:n], codes[:n] if conditional else None)
            exported = program(z[:n], codes[:n] if conditional else None)
        assert exported.shape == eager.shape
        assert (exported - eager).abs().max().item() / 2 < 1e-3  # [-1, 1] -> [0, 1]


def test_generate_records_the_backend_and_regenerate_uses_it(home, tmp_path):
    runner = CliRunner()
    made = runner.invoke(app, ["generate", "--model", "fmnist-cgan", "-n", "3", "--backend", "onnx", "--out", str(tmp_path / "gen")])
    assert made.exit_code == 0, made.output
    image = tmp_path / "gen" / "sample-0-0002.png"
    assert read_record(image)["backend"] == "onnx"
    assert runner.invoke(app, ["regenerate", str(image), "--out", str(tmp_path / "again")]).exit_code == 0
    assert (tmp_path / "again" / image.name).read_bytes() == image.read_bytes()
    eager = ProductGenerator.load("fmnist-cgan").sample(3)
    onnx = ProductGenerator.load("fmnist-cgan").use_backend("onnx").sample(3)
    assert np.abs(eager.astype(int) - onnx.astype(int)).max() <= 1  # at most one level apart, where float rounding lands on a boundary


def test_export_writes_a_program_that_runs_alone(home, tmp_path):
    import onnxruntime

    result = CliRunner().invoke(app, ["export", "fmnist-cgan", "--out", str(tmp_path / "model"), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "model" / "generator.onnx"), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((5, 128)).astype(np.float32)
    images = session.run(None, {"z": z, "codes": np.arange(5, dtype=np.int64)[:, None]})[0]
    assert images.shape == (5, 1, 32, 32) and np.abs(images).max() <= 1 + 1e-6  # tanh
    bad = CliRunner().invoke(app, ["export", "fmnist-cgan", "--out", str(tmp_path / "x"), "--format", "tflite"])
    assert isinstance(bad.exception, ProdgenError) and "Unknown export format 'tflite'" in str(bad.exception)
    with pytest.raises(ProdgenError, match="Unknown backend 'tensorrt'"):
        ProductGenerator.load("fmnist-cgan").use_backend("tensorrt")
