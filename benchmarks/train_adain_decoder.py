"""Train an AdaIN decoder (Huang & Belongie 2017) for a feature network, on CPU.

    .venv/bin/python benchmarks/train_adain_decoder.py --features random-multiscale \\
        --out prodgen/assets/style/random-multiscale --minutes 12
    .venv/bin/python benchmarks/train_adain_decoder.py --features ~/vgg19.safetensors    # a decoder for VGG-19

Each step encodes a batch of content crops and style images, gives the content features the style's
channel statistics (AdaIN, strength 1), decodes them and scores the result with the same frozen
encoder: a content loss pulls the decoded image's features at the AdaIN layers onto the AdaIN target,
a style loss pulls the mean and standard deviation of its features at every style layer up to the
deepest AdaIN layer onto the style image's (the content loss also looks at those layers, each against
its own AdaIN target). Both losses are relative (a layer's squared error over
the target's squared norm), so they weigh the same whatever the network's activation sizes.

Content: photos of /work/shared/catalogs/clothing-small (only read), except the two first photos of
each category, which the benchmark keeps for itself. Styles: half procedural textures, half fabric
crops from the same training photos (benchmarks/style_textures.py says why). Everything is drawn from
--seed with one torch thread, so the same --steps give the same weights; --minutes stops earlier on a
slow machine and the config records the steps run. Written: model.safetensors + config.json (+ log.jsonl).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import typer

from prodgen.data.preprocess import BadImage, decode_photo
from prodgen.edit.style.adain import Decoder, adain_targets, decoder_inputs, default_decoder_dir, save_decoder
from prodgen.edit.style.features import load_features, mean_std
from prodgen.fileio import write_text_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from style_textures import TEXTURE_KINDS, clothing_photos, fabric_crop, held_out_photos, procedural_texture  # noqa: E402

STYLE_POOL = 3000  # style images drawn once before training: half procedural, half fabric crops


def square_crops(photos: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square of each photo, its shorter side first resized to 1.15 * size."""
    crops = []
    for photo in photos:
        height, width = photo.shape[:2]
        scale = 1.15 * size / min(height, width)
        resized = cv2.resize(photo, (max(size, round(width * scale)), max(size, round(height * scale))), interpolation=cv2.INTER_AREA)
        y, x = rng.integers(0, resized.shape[0] - size + 1), rng.integers(0, resized.shape[1] - size + 1)
        crops.append(resized[y : y + size, x : x + size])
    return np.stack(crops)


def read_training_photos(limit: int | None) -> list[np.ndarray]:
    kept = set(held_out_photos())
    photos = []
    for path in [p for p in clothing_photos() if p not in kept][:limit]:
        try:
            photo = decode_photo(path.read_bytes())
        except BadImage:
            continue
        photos.append(np.repeat(photo, 3, axis=2) if photo.shape[2] == 1 else photo)
    return photos


def style_pool(photos: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    procedural = [procedural_texture(TEXTURE_KINDS[k % len(TEXTURE_KINDS)], int(rng.integers(1_000_000)), size) for k in range(STYLE_POOL // 2)]
    fabrics = [fabric_crop(photos[int(rng.integers(len(photos)))], size, rng) for _ in range(STYLE_POOL - len(procedural))]
    return np.stack(procedural + fabrics)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)


def relative(error: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (error**2).sum() / (target**2).sum().clamp_min(1e-12)


def main(
    features: str = typer.Option("random-multiscale", help="Feature network: random-multiscale, catalog:NAME or a VGG-19 weights file."),
    out: Path | None = typer.Option(None, help="Decoder folder (default: $PRODGEN_HOME/style/decoders/<features>, where stylise looks)."),
    size: int = typer.Option(96, help="Side of the square training crops (a multiple of 8)."),
    batch: int = typer.Option(8),
    width: int = typer.Option(32, help="Channels of the finest decoder stage (x2 per coarser stage, up to x4)."),
    style_weight: float = typer.Option(3.0, help="Weight of the style loss against the content loss."),
    learning_rate: float = typer.Option(1e-3),
    steps: int = typer.Option(100_000, help="Steps at most."),
    minutes: float = typer.Option(12.0, help="Stop after this much wall time, whatever --steps."),
    seed: int = typer.Option(0),
    threads: int = typer.Option(1),
    photo_limit: int | None = typer.Option(None, help="Use only this many training photos (quick trials)."),
) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = load_features(features)
    directory = out or default_decoder_dir(network)
    photos = read_training_photos(photo_limit)
    styles = style_pool(photos, size, rng)
    print(f"{len(photos)} training photos, {len(styles)} style images; features {network.name}, decoder to {directory}", flush=True)
    decoder = Decoder(decoder_inputs(network), width)
    optimiser = torch.optim.Adam(decoder.parameters(), lr=learning_rate)
    style_layers = network.encoder_style_layers
    # The content loss looks at every style layer the encoder computes, each against its own AdaIN target, not only at
    # the decoder's inputs: random-multiscale's full-resolution level is no input, and without it the decoder learns
    # to blur fine edges away.
    content_layers = tuple(dict.fromkeys(network.adain_layers + style_layers))
    log = []
    started = time.perf_counter()
    step = 0
    while step < steps and time.perf_counter() - started < minutes * 60:
        content = to_tensor(square_crops([photos[i] for i in rng.integers(0, len(photos), batch)], size, rng))
        style = to_tensor(styles[rng.integers(0, len(styles), batch)])
        with torch.no_grad():
            targets = adain_targets(network, content, style, layers=content_layers)
            style_stats = {k: mean_std(v) for k, v in network.features(style, style_layers).items()}
        decoded = decoder({k: targets[k] for k in network.adain_layers})
        decoded_features = network.features(decoded, tuple(dict.fromkeys(style_layers + content_layers)))
        content_loss = torch.stack([relative(decoded_features[k] - targets[k], targets[k]) for k in targets]).mean()
        style_terms = []
        for layer, (mean, std) in style_stats.items():
            decoded_mean, decoded_std = mean_std(decoded_features[layer])
            style_terms.append(relative(torch.cat([decoded_mean - mean, decoded_std - std]), torch.cat([mean, std])))
        style_loss = torch.stack(style_terms).mean()
        loss = content_loss + style_weight * style_loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        if step % 25 == 0:
            record = {"step": step, "seconds": round(time.perf_counter() - started, 1), "content": round(content_loss.item(), 5),
                      "style": round(style_loss.item(), 5)}
            log.append(record)
            print(json.dumps(record), flush=True)
    command = "python benchmarks/train_adain_decoder.py " + " ".join(sys.argv[1:])
    save_decoder(decoder, network, directory, width, {
        "training": {"command": command, "steps": step, "seconds": round(time.perf_counter() - started, 1), "cpu_seconds": round(time.process_time(), 1), "seed": seed, "threads": threads,
                     "size": size, "batch": batch, "style_weight": style_weight, "learning_rate": learning_rate, "photos": len(photos),
                     "styles": "procedural textures (stripes, checks, dots, noise, strokes) and fabric crops of the training photos",
                     "final_losses": log[-1] if log else None}})
    write_text_atomic(directory / "log.jsonl", "".join(json.dumps(record) + "\n" for record in log))
    print(f"decoder written to {directory} after {step} steps", flush=True)


if __name__ == "__main__":
    typer.run(main)
