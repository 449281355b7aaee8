"""Model cards: what a shipped or shared generator is, how it was made and how good it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prodgen.fileio import write_json_atomic, write_text_atomic
from prodgen.generate.pipeline import ProductGenerator
from prodgen.metrics.prdc import metric_definitions
from prodgen.train import checkpoint as ckpt

SHOWN_SCORES = ("fid", "kid_mean", "precision", "recall", "density", "coverage", "class_consistency", "memorisation", "cas")


def model_card(generator: ProductGenerator, command: str, scores: dict[str, Any] | None = None, reconstruction: dict[str, Any] | None = None) -> dict[str, Any]:
    """Facts read from the checkpoint the generator came from, plus final scores if measured (sample
    scores; for a VAE also `prodgen eval autoencoder`'s reconstruction scores)."""
    state = ckpt.read_state(Path(generator.source))
    return {
        "source_checkpoint": generator.source,
        "catalog": generator.spec["catalog"],
        "conditions": generator.spec["conditions"],
        "config": state["config"],
        "seed": state["config"]["train"]["seed"],
        "training_command": command,
        "step": state["step"],
        "training_minutes": round(state["elapsed"] / 60, 1),
        "world_size": state["world_size"],
        "validation_best": state["best"],
        "validation_history": state["history"],
        "test_scores": scores,
        **({"reconstruction_scores": reconstruction} if reconstruction else {}),
    }


def scored_counts(scores: dict[str, Any]) -> str:
    """What was scored, read from the evaluation result: "10,000 generated class-conditional samples
    against the 10,000 real test images, seed 0". A count the result does not record is said to be unrecorded."""
    count, reference, split = scores.get("num_samples"), scores.get("num_reference"), scores.get("reference_split") or "reference"
    kind = {True: "class-conditional ", False: "unconditional "}.get(scores.get("conditional"), "")
    samples = f"{count:,} generated {kind}samples" if isinstance(count, int) else f"generated {kind}samples (count not recorded)"
    real = f"the {reference:,} real {split} images" if isinstance(reference, int) else f"the real {split} split (size not recorded)"
    seed = f", seed {scores['seed']}" if "seed" in scores else ""
    return f"{samples} against {real}{seed}"


def _grouped(texts: dict[str, str], joiner: str = ": ") -> str:
    """{"precision": A, "recall": A, "density": B} -> "precision/recall: A; density: B" (joiner ": "),
    or "A for precision, recall; B for density" (joiner " for ")."""
    groups: dict[str, list[str]] = {}
    for key, text in texts.items():
        groups.setdefault(text, []).append(key)
    if joiner == ": ":
        return "; ".join(f"{'/'.join(keys)}: {text}" for text, keys in groups.items())
    return "; ".join(f"{text}{joiner}{', '.join(keys)}" for text, keys in groups.items())


def _settings(section: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in section.items()) or "none"


def render_model_card(name: str, card: dict[str, Any]) -> str:
    """MODEL_CARD.md for a card: the facts, then test scores with the number of samples scored,
    each k-NN metric's paper and k, and where the real-data column comes from."""
    lines = [
        f"# Model card: {name}",
        "",
        f"Generator trained on the `{card['catalog']}` catalog, conditioned on {', '.join(card['conditions']['names']) or 'nothing'}.",
        "",
        f"- training command: `{card['training_command']}`",
        f"- seed {card['seed']}, {card['step']} steps, {card['training_minutes']} min of training on {card['world_size']} process(es)",
        f"- family {card['config'].get('family', 'gan')}: {_settings(card['config']['model'])}; loss: {_settings(card['config'].get('loss') or {})}",
        f"- best validation {card['validation_best']['metric']}: {card['validation_best']['value']:.3f} at step {card['validation_best']['step']}",
    ]
    scores = card["test_scores"]
    if scores:
        metrics, floors = scores["metrics"], scores.get("floors", {})
        definitions = scores.get("metric_definitions", {})
        split = scores.get("reference_split") or "test"
        lines += ["", f"{split.capitalize()}-split scores in prodgen's domain feature space: {scored_counts(scores)}."]
        knn = [k for k in ("precision", "recall", "density", "coverage") if k in metrics]
        if knn:
            named = _grouped({k: definitions[k] for k in knn if k in definitions})
            lines += ["", f"k-NN metrics: {named}." if named else "k-NN metrics: the k they were measured with is not recorded."]
            current = metric_definitions()
            changed = {k: current[k] for k in knn if k in definitions and definitions[k] != current[k]}
            if changed:
                lines += [f"prodgen's defaults are now {_grouped(changed)}, so a fresh `prodgen eval run` of this model reports other values for these."]
        if scores.get("floor_source"):
            lines += ["", f"The real-data column scores real images the same way (same k) in place of samples: {_grouped(scores['floor_source'], ' for ')}."]
        lines += ["", "| score | model | real data |", "| --- | --- | --- |"]
        lines += [
            f"| {k}{f' ({definitions[k]})' if k in definitions else ''} | {metrics[k]:.4f} | {floors.get(k, float('nan')):.4f} |"
            for k in SHOWN_SCORES
            if k in metrics
        ]
    reconstruction = card.get("reconstruction_scores")
    if reconstruction:
        definitions = reconstruction.get("definitions", {})
        lines += ["", f"Reconstruction scores on {reconstruction['num_images']:,} {reconstruction['split']} products (`prodgen eval autoencoder`, seed {reconstruction['seed']}):",
                  "", "| score | value |", "| --- | --- |"]
        lines += [f"| {k}{f' ({definitions[k]})' if k in definitions else ''} | {v:.4f} |" for k, v in reconstruction["metrics"].items()]
    notes = card.get("notes", [])
    if notes:
        lines += ["", "Notes:", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def write_model_card(directory: Path, card: dict[str, Any]) -> None:
    write_json_atomic(directory / "model_card.json", card)
    write_text_atomic(directory / "MODEL_CARD.md", render_model_card(directory.name, card))
