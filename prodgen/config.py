"""Training configuration: YAML presets validated by pydantic, overridable with `--set a.b=value`.

Unknown keys and bad values are errors naming the offending key; every run saves its
resolved config, and `--resume` compares hyper-parameters against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from prodgen.errors import ProdgenError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"
# What may change when resuming: how long to train, how patient to be and how the hardware runs
# it (CPU threads, bf16 autocast, memory layout); not what is trained or how.
SCHEDULE_KEYS = frozenset({"train.steps", "train.max_minutes", "train.threads", "train.precision", "train.channels_last", "eval.patience"})
AUGMENTATIONS = ("translation", "color", "cutout")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    catalog: str = "fashion-mnist"
    conditions: list[str] = Field(default_factory=lambda: ["category"], description="category and/or attribute columns; [] for unconditional")
    pad_to: int | None = Field(None, description="pad images (with their background) to this square size, e.g. 28 -> 32")
    augment: list[Literal["translation", "color", "cutout"]] = Field(default_factory=list, description="DiffAugment policies")


class ModelConfig(Section):
    generator: str = "resnet"
    discriminator: str = "projection"
    z_dim: int = Field(128, ge=2, le=1024)
    g_width: int = Field(128, ge=4, le=2048)
    d_width: int = Field(64, ge=4, le=2048)
    attention: bool = False
    auxiliary_weight: float = Field(0.0, ge=0.0, description="> 0 adds AC-GAN classifier heads to D with this weight")


class LossConfig(Section):
    kind: Literal["bce", "hinge", "lsgan", "wgan-gp", "mmd"] = "hinge"
    r1_gamma: float = Field(0.0, ge=0.0)
    gp_weight: float = Field(10.0, ge=0.0)


class TrainConfig(Section):
    batch_size: int = Field(64, ge=2, le=8192)
    steps: int = Field(20_000, ge=1)
    max_minutes: float | None = Field(None, gt=0)
    n_dis: int = Field(1, ge=1, le=10)
    lr_g: float = Field(2e-4, gt=0, le=1)
    lr_d: float = Field(2e-4, gt=0, le=1)
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float = Field(0.999, ge=0.0, lt=1.0)
    seed: int = 0
    nan_patience: int = Field(5, ge=1, description="consecutive non-finite steps before stopping")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: all cores)")
    lr_schedule: Literal["constant", "linear"] = Field(
        "constant", description="linear: both learning rates fall linearly to 0 from `decay_from` of the run (steps or time budget, whichever is nearer)")
    decay_from: float = Field(0.5, ge=0.0, lt=1.0, description="fraction of the run after which a linear schedule starts to decay")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16: forward passes under bfloat16 autocast (GPUs with bf16 units); weights stay fp32")
    channels_last: bool = Field(False, description="NHWC memory layout for models and batches (faster convolutions on GPUs)")

    @model_validator(mode="after")
    def _betas_in_range(self) -> TrainConfig:
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas}")
        return self


class EvalConfig(Section):
    every: int = Field(1000, ge=1, description="steps between validation scores")
    samples: int = Field(2000, ge=100)
    metric: Literal["fid", "kid"] = "fid"
    patience: int = Field(10, ge=1, description="evaluations without improvement before early stopping (under a linear schedule, counted once the decay has started)")
    sample_every: int = Field(500, ge=1)
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(1000, ge=1)
    keep_last: int = Field(3, ge=1)


class RunConfig(Section):
    name: str = "run"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    def flat(self) -> dict[str, Any]:
        return flatten(self.model_dump(mode="json"))


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
        where = ".".join(str(part) for part in item["loc"])
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """`train.lr_g=1e-4` -> tree['train']['lr_g'] = 0.0001 (the value is parsed as YAML)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ProdgenError(f"Invalid --set {assignment!r}: use KEY=VALUE, e.g. train.lr_g=1e-4")
    *parents, leaf = key.strip().split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ProdgenError(f"Invalid --set {assignment!r}: {part} is not a section")
    value = yaml.safe_load(raw)
    # YAML 1.1 reads 1e-4 as a string; numbers are what such a key means
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    node[leaf] = value


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProdgenError(f"Cannot read config {path}: {exc}") from exc
    if not isinstance(tree, dict):
        raise ProdgenError(f"Config {path} must be a mapping of sections.")
    return tree


def load_config(preset_or_path: str = "fmnist-cgan", overrides: list[str] | None = None) -> RunConfig:
    """A preset name (see `preset_names()`) or a YAML path, then `section.key=value` overrides."""
    path = Path(preset_or_path)
    if not path.suffix:
        path = PRESETS_DIR / f"{preset_or_path}.yaml"
        if not path.exists():
            raise ProdgenError(f"Unknown preset {preset_or_path!r}; presets: {', '.join(preset_names())}, or give a YAML path.")
    elif not path.exists():
        raise ProdgenError(f"Config file not found: {path}")
    tree = read_yaml(path)
    for assignment in overrides or []:
        apply_override(tree, assignment)
    return validate_config(tree, origin=str(path))


def validate_config(tree: dict[str, Any], origin: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as exc:
        raise ProdgenError(_format_errors(exc, origin)) from None


def hyperparameter_changes(saved: RunConfig, requested: RunConfig) -> list[str]:
    """Keys whose values differ, schedule keys (steps, time budget, patience) excepted."""
    old, new = saved.flat(), requested.flat()
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if k not in SCHEDULE_KEYS and old.get(k) != new.get(k)]


def dump_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
