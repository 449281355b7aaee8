"""Micro-batching: one inference worker (a thread) per generator. Concurrent generate requests queue
their seeds and condition codes; the worker collects them for a short window (or until `max_batch`
images wait), draws their latents, runs them through shared forward passes and hands each caller its
own rows.
It waits for the window only while requests come concurrently (the last pass was shared, or more
requests are queued): a client sending one request at a time is served at once.

A pass takes at most DEFAULT_MAX_BATCH (8) images unless the server is told otherwise (a larger
request goes alone). On a CPU the time per image stops falling at about 6 to 8 rows (the
convolutions are compute-bound), and small rounds keep the pipeline full: under load one round's
pass runs while the event loop encodes and answers the round before it, where one large round leaves
the worker idle while its answers go out (benchmarks/RESULTS.md: a 64-px colour model at concurrency
16 answers 574 requests/s with passes of at most 8 images, 389 with up to 256). On a GPU, where
larger passes are cheaper per image, raise it.

Same request, same bytes. The library samples image i of a seed as a row of a forward pass over its
whole aligned block of 256 latents (prodgen.models.sampling), because float kernels may block their
arithmetic by batch shape. Rows do not depend on each other (the networks are in eval mode), so what
can change a row's bytes is the pass's shape, not its neighbours. A forward pass of 256 rows costs
about 120 ms on one CPU core, far too slow for a one-image request, so the worker checks at
start-up, for each batch size of CANDIDATE_SIZES, whether a pass of that size gives every row bit for
bit the float output of the full-block pass (on a probe block, rows drawn from all positions): the
kernels' order of arithmetic depends on shapes, not on values, so a size that agrees on the probe
agrees on every input. Passes then run at the smallest agreeing size that holds the waiting rows,
padded with zero rows, and never at a size that failed (eager PyTorch on a single row typically
differs by one float ulp, so one image goes through a pass of two). On a CPU a pass costs about the
same per row at any size (the convolutions are compute-bound), so a padding row costs as much as a
real one: the sizes checked are every size to 16, where rounds under load fall, then steps of at
most 1.5x. The served image is exactly the one `prodgen generate` and `prodgen regenerate` make,
which a test checks against `ProductGenerator.sample`."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch

from prodgen.generate.pipeline import ProductGenerator
from prodgen.models.sampling import BLOCK, block_latents, stream_latents

PROBE_SEED = 2**31 - 1  # any seed: the probe only has to exercise every row of a pass
CANDIDATE_SIZES = (*range(1, 17), 24, 32, 48, 64, 96, 128, 192)  # then the full block
DEFAULT_MAX_BATCH = 8
STOP = object()


@torch.no_grad()
def agreeing_sizes(generator: ProductGenerator) -> list[int]:
    """The forward batch sizes (of CANDIDATE_SIZES; the full block always) whose every row comes out bit
    for bit as in a pass over the full block, checked on a probe block with rows from all positions."""
    z = block_latents(PROBE_SEED, 0, generator.spec["arguments"]["z_dim"])
    codes = generator.codes_for(BLOCK, None, PROBE_SEED)
    conditional = bool(codes.shape[1])
    full = generator.forward(z, codes if conditional else None)
    order = torch.randperm(BLOCK, generator=torch.Generator().manual_seed(0))
    sizes = []
    for size in CANDIDATE_SIZES:
        rows = order[:size]
        if torch.equal(generator.forward(z[rows], codes[rows] if conditional else None), full[rows]):
            sizes.append(size)
    return sizes + [BLOCK]


@dataclass
class Pending:
    """One request's images, waiting for a forward pass: images first_index .. of the seed's stream."""

    seed: int
    first_index: int
    truncation: float
    codes: torch.Tensor  # (count, conditions)
    future: Future

    @property
    def count(self) -> int:
        return len(self.codes)


class InferenceWorker:
    """The one thread that runs a generator's forward passes for generate requests."""

    def __init__(self, generator: ProductGenerator, max_batch: int, window_s: float, on_pass: Callable[[int, int], None] | None = None):
        self.generator, self.max_batch, self.window_s = generator, max_batch, window_s
        self.on_pass = on_pass  # told (requests, images) after each pass, for the metrics
        self.sizes = agreeing_sizes(generator)
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=f"prodgen-inference-{generator.source}", daemon=True)
        self.thread.start()

    def submit(self, codes: torch.Tensor, seed: int, first_index: int, truncation: float) -> Future:
        """Queue images first_index .. first_index + len(codes) - 1 of the seed's stream with these
        condition codes (`ProductGenerator.codes_for`); the future gets them as uint8 (N, H, W, C). Cheap
        enough for the event loop: the latents are drawn by the worker."""
        future: Future = Future()
        self.queue.put(Pending(seed, first_index, truncation, codes, future))
        return future

    def stop(self) -> None:
        self.queue.put(STOP)
        self.thread.join()

    def _run(self) -> None:
        held = None  # a request taken from the queue that did not fit the last round
        shared = False  # whether the last pass served several requests
        while True:
            first = held if held is not None else self.queue.get()
            held = None
            if first is STOP:
                return
            round_, images = [first], first.count
            # The window is only worth waiting while requests come concurrently: a lone request with
            # nothing queued behind it, after a pass that served one request, goes at once, so
            # batching costs a sequential client nothing. Under load, requests queue during each pass.
            waiting = shared or not self.queue.empty()
            deadline = time.monotonic() + (self.window_s if waiting else 0.0)
            while images < self.max_batch:
                try:
                    item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is STOP or images + item.count > self.max_batch:
                    held = item
                    break
                round_.append(item)
                images += item.count
            shared = len(round_) > 1
            self._serve(round_)

    def _serve(self, round_: list[Pending]) -> None:
        round_ = [p for p in round_ if p.future.set_running_or_notify_cancel()]  # a caller that went away is dropped
        if not round_:
            return
        try:
            z_dim = self.generator.spec["arguments"]["z_dim"]
            latents = torch.cat([stream_latents(p.seed, p.first_index, p.count, z_dim) * p.truncation for p in round_])
            codes = torch.cat([p.codes for p in round_])
            images = np.concatenate([self._draw(latents[start : start + BLOCK], codes[start : start + BLOCK]) for start in range(0, len(latents), BLOCK)])
        except Exception as exc:  # every caller of the round hears of it, and the worker goes on
            for pending in round_:
                pending.future.set_exception(exc)
            return
        if self.on_pass:
            self.on_pass(len(round_), len(images))
        start = 0
        for pending in round_:
            pending.future.set_result(images[start : start + pending.count])
            start += pending.count

    def _draw(self, latents: torch.Tensor, codes: torch.Tensor) -> np.ndarray:
        """Rows through one pass of the smallest agreeing size, padded with zero rows."""
        rows = len(latents)
        size = next(size for size in self.sizes if size >= rows)
        padded_latents = torch.zeros((size, latents.shape[1]), dtype=latents.dtype)
        padded_codes = torch.zeros((size, codes.shape[1]), dtype=codes.dtype)
        padded_latents[:rows], padded_codes[:rows] = latents, codes
        return self.generator.draw(padded_latents, padded_codes)[:rows]
