"""Model cards state what was scored: the real numbers of generated and real images, and each k-NN metric's paper and k."""

from __future__ import annotations

from prodgen.generate.card import render_model_card, scored_counts
from prodgen.metrics.prdc import metric_definitions


def _card(test_scores: dict | None) -> dict:
    return {
        "catalog": "tiny",
        "conditions": {"names": ["category"]},
        "training_command": "prodgen train",
        "seed": 0,
        "step": 3,
        "training_minutes": 0.1,
        "world_size": 1,
        "config": {"model": {"generator": "dcgan", "discriminator": "dcgan"}, "loss": {"kind": "bce"}},
        "validation_best": {"metric": "fid", "value": 9.0, "step": 3},
        "test_scores": test_scores,
    }


def _scores(**extra) -> dict:
    metrics = {"fid": 3.0, "precision": 0.9, "recall": 0.5, "density": 0.8, "coverage": 0.6}
    return {"metrics": metrics, "floors": dict(metrics), **extra}


def test_card_states_the_counts_the_evaluation_scored():
    scores = _scores(
        reference_split="test",
        num_samples=120,
        num_reference=90,
        conditional=True,
        seed=4,
        metric_definitions=metric_definitions(),
        floor_source={"fid": "120 random real train images", "pr": "120 random real train images"},
    )
    text = render_model_card("tiny-gan", _card(scores))
    assert "120 generated class-conditional samples against the 90 real test images, seed 4" in text
    assert "10,000" not in text
    assert "precision/recall: Kynkäänniemi et al. 2019, k=3; density/coverage: Naeem et al. 2020, k=5" in text
    assert "| recall (Kynkäänniemi et al. 2019, k=3) | 0.5000 |" in text
    assert "120 random real train images for fid, pr" in text
    assert "defaults are now" not in text  # measured with the current k


def test_card_says_when_its_k_is_not_the_current_default_or_its_counts_are_unrecorded():
    old_k = _scores(reference_split="test", num_samples=10_000, num_reference=10_000, metric_definitions=metric_definitions(5, 5))
    text = render_model_card("old", _card(old_k))
    assert "10,000 generated samples against the 10,000 real test images" in text
    assert "| precision (Kynkäänniemi et al. 2019, k=5) |" in text
    assert "defaults are now precision/recall: Kynkäänniemi et al. 2019, k=3" in text

    assert scored_counts({"metrics": {}}) == "generated samples (count not recorded) against the real reference split (size not recorded)"
    unrecorded = render_model_card("bare", _card(_scores()))
    assert "(count not recorded)" in unrecorded and "the k they were measured with is not recorded" in unrecorded
    assert "Test-split" not in render_model_card("unscored", _card(None))
