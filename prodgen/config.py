"""Training configuration: YAML presets validated by pydantic, overridable with `--set a.b=value`.

A config has the sections every model family shares (`data`, `train`, `eval`) and the two its
family owns (`model`: which networks; `loss`: which objective), validated by that family's own
classes (`family: gan` by default). Unknown keys, bad values and options that the chosen model
would ignore are errors naming the offending key; every run saves its resolved config, and
`--resume` continues with that saved config.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from prodgen.errors import ProdgenError
from prodgen.presets import read_preset

DEFAULT_PRESET = "fmnist-cgan"
DEFAULT_FAMILY = "gan"
# What may change when resuming: how long to train, how patient to be and how the hardware runs
# it (bf16 autocast, memory layout, CPU threads, read-ahead); not what is trained or how. Changing the thread
# count changes the order of float sums, so the losses after such a resume differ in the last bits.
RESUME_KEYS = frozenset({"train.steps", "train.max_minutes", "train.threads", "train.precision", "train.channels_last", "train.compile", "train.prefetch", "eval.patience"})
AUGMENTATIONS = ("translation", "color", "cutout")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    catalog: str = "fashion-mnist"
    conditions: list[str] = Field(default_factory=lambda: ["category"], description="category and/or attribute columns; [] for unconditional")
    categories: list[str] = Field(default_factory=list, description="train on these categories of the catalog only; []: all")
    pad_to: int | None = Field(32, description="pad images (with their background) to this square size, e.g. 28 -> 32; null: none")
    augment: list[Literal["translation", "color", "cutout"]] = Field(default_factory=list, description="DiffAugment policies")
    ada_target: float | None = Field(
        None, gt=0.0, lt=1.0, description="ADA: apply each augment policy with a probability p tuned so that E[sign(D(real))] stays near this (0.6 in the paper); null: always apply them"
    )
    ada_images: int = Field(100_000, ge=1, description="ADA: real images over which p can rise from 0 to 1 (the paper's 500k assumes GPU-sized runs)")
    mirror: bool = Field(
        False, description="train on every photo and on its left-right mirror image (StyleGAN2-ADA's --mirror): twice the images for a small catalog, for products whose mirror image is one too (no lettering)")

    @model_validator(mode="after")
    def _ada_needs_policies(self) -> DataConfig:
        if self.ada_target is not None and not self.augment:
            raise ValueError("data.ada_target tunes how often the data.augment policies apply, and data.augment is empty")
        if self.ada_target is None and self.ada_images != DataConfig.model_fields["ada_images"].default:
            raise ValueError("data.ada_images paces ADA, which is off (data.ada_target is null)")
        return self


class TrainConfig(Section):
    batch_size: int = Field(64, ge=2, le=8192, description="the global batch: split evenly over the processes")
    steps: int = Field(60_000, ge=1)
    max_minutes: float | None = Field(None, gt=0)
    n_dis: int = Field(1, ge=1, le=10)
    lr_g: float = Field(4e-4, gt=0, le=1)
    lr_d: float = Field(4e-4, gt=0, le=1)
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float = Field(0.999, ge=0.0, lt=1.0)
    seed: int = 0
    nan_patience: int = Field(5, ge=1, description="consecutive non-finite steps before stopping")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: all cores)")
    lr_schedule: Literal["constant", "linear"] = Field(
        "linear", description="linear: both learning rates fall linearly to 0 from `decay_from` of the run (steps or time budget, whichever is nearer)")
    decay_from: float = Field(0.5, ge=0.0, lt=1.0, description="fraction of the run after which a linear schedule starts to decay")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16: forward passes under bfloat16 autocast (GPUs with bf16 units, CPUs with AVX-512 BF16 or AMX; on other CPUs it is emulated and slower than fp32); weights stay fp32")
    channels_last: bool = Field(False, description="NHWC memory layout for models and batches (faster convolutions on GPUs)")
    compile: bool = Field(
        False, description="compile the trained networks with torch.compile (TorchInductor): faster steps after a one-off compilation of a minute or two; needs a C++ compiler on CPUs")
    sync_batchnorm: bool = Field(False, description="BatchNorm statistics over the global batch, not each process's share (GPUs; torch SyncBatchNorm)")
    prefetch: int | None = Field(
        None, ge=0, le=64, description="batches read ahead on a background thread; 0: read on the training thread; null: 4 when a GPU trains or a CPU core is free, else 0")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas}")
        # a value other than the default that the schedule would ignore is a mistake worth naming
        if self.lr_schedule == "constant" and self.decay_from != type(self).model_fields["decay_from"].default:
            raise ValueError(f"decay_from={self.decay_from} only applies to lr_schedule: linear (the schedule is constant)")
        return self


class EvalConfig(Section):
    every: int = Field(500, ge=1, description="steps between validation scores")
    samples: int = Field(2000, ge=100)
    metric: str = Field("fid", description="validation score that picks the best checkpoint (lower is better); each family names its own: gan fid, kid or swd")
    track: list[str] = Field(default_factory=list, description="further validation scores recorded beside `metric` at each evaluation (history.json, TensorBoard), to compare selection rules after one run; the names `metric` takes")
    patience: int = Field(8, ge=1, description="evaluations without improvement before early stopping (under a linear schedule, counted once the decay has started)")
    sample_every: int = Field(500, ge=1)
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(1000, ge=1)
    keep_last: int = Field(3, ge=1)


# discriminators that torch 2.13's compiler cannot train (train.compile), with the reason a user sees
UNCOMPILABLE_DISCRIMINATORS = {
    "projection": "the spectral norm on its 1x1 shortcut convolutions fails in backward at the first step (a torch 2.13 compiler error)",
}


class RunConfig(Section):
    """The sections every family shares; `run_config_class(family)` adds the family's `model` and `loss`."""

    name: str = DEFAULT_PRESET
    family: str = DEFAULT_FAMILY
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    # set by run_config_class: the family's own sections
    model: Section
    loss: Section | None

    @model_validator(mode="after")
    def _family_checks(self) -> RunConfig:
        family = family_class(self.family)
        problems = family.check_config(self)
        discriminator = getattr(self.model, "discriminator", None)
        if self.train.compile and discriminator in UNCOMPILABLE_DISCRIMINATORS:
            problems.append(f"train.compile: the {discriminator!r} discriminator cannot be compiled: {UNCOMPILABLE_DISCRIMINATORS[discriminator]}; train it uncompiled")
        untrackable = [name for name in self.eval.track if name not in family.trackable_metrics]
        if untrackable:
            offered = ", ".join(family.trackable_metrics) or "none"
            problems.append(f"eval.track: the {self.family} family cannot record {', '.join(map(repr, untrackable))} (it can: {offered})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def flat(self) -> dict[str, Any]:
        return flatten(self.model_dump(mode="json"))


def family_class(name: str):
    """The registered model family (prodgen.train.families) of that name."""
    from prodgen.train.families import get_family

    return get_family(name)


@functools.cache
def run_config_class(family: str) -> type[RunConfig]:
    """RunConfig with the family's `model` and `loss` sections (a family without a loss section gets none)."""
    owner = family_class(family)
    loss_field: Any = (owner.loss_config, Field(default_factory=owner.loss_config)) if owner.loss_config else (None, None)
    return create_model(
        f"{owner.__name__}RunConfig",
        __base__=RunConfig,
        model=(owner.model_config, Field(default_factory=owner.model_config)),
        loss=loss_field,
    )


def default_config() -> RunConfig:
    """The pydantic defaults: equal to the default preset (a test holds them to it)."""
    return run_config_class(DEFAULT_FAMILY)()


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _format_errors(error: ValidationError, origin: str) -> str:
    lines = [f"Invalid config ({origin}):"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "config"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse_override(assignment: str) -> tuple[str, Any]:
    """`train.lr_g=1e-4` -> ("train.lr_g", 0.0001): the value is parsed as YAML."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ProdgenError(f"Invalid --set {assignment!r}: use KEY=VALUE, e.g. train.lr_g=1e-4")
    value = yaml.safe_load(raw)
    # YAML 1.1 reads 1e-4 as a string; numbers are what such a key means
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    return key.strip(), value


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    key, value = parse_override(assignment)
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ProdgenError(f"Invalid --set {assignment!r}: {part} is not a section")
    node[leaf] = value


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        return _mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    except (OSError, yaml.YAMLError) as exc:
        raise ProdgenError(f"Cannot read config {path}: {exc}") from exc


def _mapping(tree: Any, origin: str) -> dict[str, Any]:
    tree = tree or {}
    if not isinstance(tree, dict):
        raise ProdgenError(f"Config {origin} must be a mapping of sections.")
    return tree


def preset_tree(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A preset's YAML as a mapping. A preset may start from another (`base: NAME`) and change only
    what differs: its sections are merged into the base's, key by key."""
    origin = f"preset {name}"
    try:
        tree = _mapping(yaml.safe_load(read_preset(name)), origin)
    except yaml.YAMLError as exc:
        raise ProdgenError(f"Cannot read config {origin}: {exc}") from exc
    base = tree.pop("base", None)
    if base is None:
        return tree
    if base in seen + (name,):
        raise ProdgenError(f"Presets {' -> '.join(seen + (name, base))} start from each other in a circle.")
    return merged(preset_tree(base, seen + (name,)), tree)


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(preset_or_path: str = DEFAULT_PRESET, overrides: list[str] | None = None) -> RunConfig:
    """A preset name (see `prodgen.presets.preset_names()`) or a YAML path, then `section.key=value` overrides."""
    path = Path(preset_or_path)
    if not path.suffix:
        origin = f"preset {preset_or_path}"
        tree = preset_tree(preset_or_path)
    elif not path.exists():
        raise ProdgenError(f"Config file not found: {path}")
    else:
        origin = str(path)
        tree = read_yaml(path)
    for assignment in overrides or []:
        apply_override(tree, assignment)
    return validate_config(tree, origin=origin)


def validate_config(tree: dict[str, Any], origin: str = "config") -> RunConfig:
    family = tree.get("family", DEFAULT_FAMILY)
    try:
        config_class = run_config_class(family)
    except ProdgenError as exc:
        raise ProdgenError(f"Invalid config ({origin}): {exc}") from None
    try:
        return config_class.model_validate(tree)
    except ValidationError as exc:
        raise ProdgenError(_format_errors(exc, origin)) from None


def hyperparameter_changes(saved: RunConfig, requested: RunConfig) -> list[str]:
    """Keys whose values differ, those a resume may change excepted."""
    old, new = saved.flat(), requested.flat()
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if k not in RESUME_KEYS and old.get(k) != new.get(k)]


def resume_config(saved: RunConfig, overrides: list[str]) -> RunConfig:
    """A run's own saved config with the `--set` overrides a resume allows (RESUME_KEYS); any other key is refused."""
    refused = [assignment for assignment in overrides if parse_override(assignment)[0] not in RESUME_KEYS]
    if refused:
        raise ProdgenError(
            f"A resumed run keeps its own config; --set may only change {', '.join(sorted(RESUME_KEYS))} "
            f"(not {', '.join(refused)}). Start a new run to train something else, or --init-from its weights."
        )
    tree = saved.model_dump(mode="json")
    for assignment in overrides:
        apply_override(tree, assignment)
    return validate_config(tree, origin="resumed run")


def dump_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
