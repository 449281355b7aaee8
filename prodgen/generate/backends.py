"""Where a generator's forward pass runs: eager PyTorch, a TorchScript program or an ONNX Runtime
session. Each backend is a callable `(z, codes or None) -> images in [-1, 1]` like the module itself,
so sampling is written once. Programs are exported on first use and cached by the weights' digest
(`$PRODGEN_HOME/exports/`); `prodgen export --format onnx|torchscript` writes one for use elsewhere."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from prodgen.errors import ProdgenError
from prodgen.fileio import atomic_path
from prodgen.paths import prodgen_home

BACKENDS = ("eager", "torchscript", "onnx")
SUFFIXES = {"torchscript": ".ts", "onnx": ".onnx"}
EXPORT_BATCH = 4  # the example batch the program is traced with; the batch dimension stays free


class ConditionedForward(nn.Module):
    """The generator with codes always an input: a traced program has fixed inputs (an unconditional
    model gets a (N, 0) codes tensor, which it ignores)."""

    def __init__(self, module: nn.Module, conditional: bool):
        super().__init__()
        self.module, self.conditional = module, conditional

    def forward(self, z: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return self.module(z, codes if self.conditional else None)


def example_inputs(spec: dict) -> tuple[torch.Tensor, torch.Tensor]:
    conditions = len(spec["conditions"]["names"])
    return torch.zeros(EXPORT_BATCH, spec["arguments"]["z_dim"]), torch.zeros((EXPORT_BATCH, conditions), dtype=torch.long)


@contextlib.contextmanager
def quiet_exporter():
    """torch.onnx's exporter narrates each stage and warns about torchvision operators this model does
    not use; a prodgen command shows its own progress instead."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_program(module: nn.Module, spec: dict, backend: str, path: Path) -> Path:
    """Write the generator as a TorchScript (.ts) or ONNX (.onnx) program with a free batch dimension."""
    wrapper = ConditionedForward(module, bool(spec["conditions"]["names"])).eval()
    inputs = example_inputs(spec)
    with atomic_path(path) as tmp, torch.no_grad():
        if backend == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript for torch.export; it still works
                torch.jit.save(torch.jit.freeze(torch.jit.trace(wrapper, inputs)), str(tmp))
        elif backend == "onnx":
            batch = torch.export.Dim("batch", min=1, max=65536)
            with quiet_exporter():
                torch.onnx.export(wrapper, inputs, str(tmp), input_names=["z", "codes"], output_names=["images"], dynamo=True,
                                  external_data=False, dynamic_shapes={"z": {0: batch}, "codes": {0: batch}}, verbose=False)
        else:
            raise ProdgenError(f"Unknown export format {backend!r}; choose {' or '.join(SUFFIXES)}.")
    return path


class TorchScriptForward:
    def __init__(self, path: Path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.program = torch.jit.load(str(path), map_location="cpu")
        self.device = torch.device("cpu")

    def __call__(self, z: torch.Tensor, codes: torch.Tensor | None) -> torch.Tensor:
        return self.program(z, codes if codes is not None else torch.zeros((len(z), 0), dtype=torch.long))


class OnnxForward:
    """An ONNX Runtime session: the CUDA provider when onnxruntime has one, else the CPU provider,
    with as many threads as torch uses."""

    def __init__(self, path: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        available = onnxruntime.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.device = torch.device("cpu")

    def __call__(self, z: torch.Tensor, codes: torch.Tensor | None) -> torch.Tensor:
        codes = codes if codes is not None else torch.zeros((len(z), 0), dtype=torch.long)
        feed = dict(zip(self.inputs, (z.cpu().numpy(), codes.cpu().numpy().astype(np.int64))))
        return torch.from_numpy(self.session.run(None, feed)[0])


def program_path(digest: str, backend: str) -> Path:
    """The cached program of these weights (by their digest) for this torch version."""
    return prodgen_home() / "exports" / f"{digest[:32]}-torch{torch.__version__.split('+')[0]}{SUFFIXES[backend]}"


def load_forward(module: nn.Module, spec: dict, digest: str, backend: str) -> Callable:
    """The forward callable of a backend, exporting the program to the cache first if needed."""
    if backend == "eager":
        return module
    if backend not in BACKENDS:
        raise ProdgenError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    path = program_path(digest, backend)
    if not path.exists():
        export_program(module, spec, backend, path)
    return TorchScriptForward(path) if backend == "torchscript" else OnnxForward(path)
