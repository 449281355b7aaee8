"""Deterministic, stratified, group-aware train/val/test assignment that is stable under additions.

Within each category, groups (one product's photos, or one image) are visited in a
seeded hash order and each goes to the split furthest below its target share.
Groups assigned in an earlier run keep their split and count towards the targets,
so adding photos to a folder never moves an existing photo to another split.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence

from prodgen.data.catalog import SPLITS
from prodgen.errors import ProdgenError


def _order_key(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def validate_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise ProdgenError(f"Unknown split(s) {sorted(unknown)}; splits are {', '.join(SPLITS)}.")
    full = {s: float(fractions.get(s, 0.0)) for s in SPLITS}
    if any(v < 0 for v in full.values()) or abs(sum(full.values()) - 1.0) > 1e-6 or full["train"] <= 0:
        raise ProdgenError(f"Split fractions must be non-negative, sum to 1 and give train a share; got {full}.")
    return full


def assign_splits(
    categories: Sequence[str],
    groups: Sequence[str],
    fractions: Mapping[str, float],
    seed: int = 0,
    previous: Mapping[str, str] | None = None,
) -> list[str]:
    """Return one split name per item. `groups[i]` keeps all items of a group together;
    `previous` maps groups to the split they had before (kept as is)."""
    if len(categories) != len(groups):
        raise ValueError("categories and groups must have the same length")
    targets = validate_fractions(fractions)
    previous = previous or {}

    members: dict[str, list[int]] = defaultdict(list)
    for i, group in enumerate(groups):
        members[group].append(i)
    by_category: dict[str, list[str]] = defaultdict(list)
    for group, items in members.items():
        by_category[categories[items[0]]].append(group)

    group_split: dict[str, str] = {}
    for category_groups in by_category.values():
        counts = dict.fromkeys(SPLITS, 0)
        fresh = []
        for group in category_groups:
            if group in previous:
                group_split[group] = previous[group]
                counts[previous[group]] += len(members[group])
            else:
                fresh.append(group)
        for group in sorted(fresh, key=lambda g: _order_key(seed, g)):
            total_after = sum(counts.values()) + len(members[group])
            deficits = [targets[s] * total_after - counts[s] for s in SPLITS]
            split = SPLITS[max(range(len(SPLITS)), key=lambda k: (deficits[k], -k))]
            group_split[group] = split
            counts[split] += len(members[group])
    return [group_split[g] for g in groups]
