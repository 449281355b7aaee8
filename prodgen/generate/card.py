"""Model cards: what a shipped or shared generator is, how it was made and how good it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prodgen.fileio import write_json_atomic, write_text_atomic
from prodgen.generate.pipeline import ProductGenerator
from prodgen.train import checkpoint as ckpt

SHOWN_SCORES = ("fid", "kid_mean", "precision", "recall", "density", "coverage", "class_consistency", "memorisation", "cas")


def model_card(generator: ProductGenerator, command: str, scores: dict[str, Any] | None = None) -> dict[str, Any]:
    """Facts read from the checkpoint the generator came from, plus final scores if measured."""
    state = json.loads((Path(generator.source) / ckpt.STATE).read_text(encoding="utf-8"))
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
    }


def write_model_card(directory: Path, card: dict[str, Any]) -> None:
    write_json_atomic(directory / "model_card.json", card)
    lines = [
        f"# Model card: {directory.name}",
        "",
        f"Generator trained on the `{card['catalog']}` catalog, conditioned on {', '.join(card['conditions']['names']) or 'nothing'}.",
        "",
        f"- training command: `{card['training_command']}`",
        f"- seed {card['seed']}, {card['step']} steps, {card['training_minutes']} min of training on {card['world_size']} process(es)",
        f"- model: {card['config']['model']['generator']} generator / {card['config']['model']['discriminator']} discriminator, "
        f"loss {card['config']['loss']['kind']}",
        f"- best validation {card['validation_best']['metric']}: {card['validation_best']['value']:.3f} at step {card['validation_best']['step']}",
    ]
    if card["test_scores"]:
        metrics, floors = card["test_scores"]["metrics"], card["test_scores"].get("floors", {})
        lines += ["", "Test-split scores (10,000 samples, prodgen domain features) beside real data:", "", "| score | model | real data |", "| --- | --- | --- |"]
        lines += [f"| {k} | {metrics[k]:.4f} | {floors.get(k, float('nan')):.4f} |" for k in SHOWN_SCORES if k in metrics]
    write_text_atomic(directory / "MODEL_CARD.md", "\n".join(lines) + "\n")
