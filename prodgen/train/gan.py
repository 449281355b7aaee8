"""The GAN training loop: read it top to bottom in `train_gan`.

Each step updates D `n_dis` times on real and generated batches, then G once; an EMA copy of
G makes samples and validation scores. Validation (FID/KID in the catalog's own feature space,
val split) picks the best checkpoint and stops training when it stops improving.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prodgen.config import SCHEDULE_KEYS, RunConfig, TrainConfig, dump_yaml, hyperparameter_changes, validate_config
from prodgen.data.catalog import load_catalog
from prodgen.errors import ProdgenError
from prodgen.fileio import write_json_atomic, write_text_atomic
from prodgen.imaging import make_grid, save_png
from prodgen.losses import auxiliary_classification_loss, build_loss, gradient_penalty, r1_penalty
from prodgen.models import build_discriminator
from prodgen.models.spec import build_from_spec, generator_spec
from prodgen.progress import make_progress
from prodgen.train import checkpoint as ckpt
from prodgen.train import distributed
from prodgen.train.augment import diff_augment
from prodgen.train.data import BatchStream, TrainingData, crop_to
from prodgen.train.runs import new_run_dir

# The score each selectable metric reports as its headline value.
SELECTION_KEYS = {"fid": "fid", "kid": "kid_mean"}


class TrainingDiverged(ProdgenError):
    """Too many consecutive non-finite losses."""


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    stopped_because: str
    best: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)


def describe_generator(config: RunConfig, data: TrainingData) -> dict[str, Any]:
    height, width = data.model_size
    arguments = {
        "z_dim": config.model.z_dim,
        "channels": data.channels,
        "height": height,
        "width": width,
        "cardinalities": data.conditions.cardinalities,
        "width_mult": config.model.g_width,
        "attention": config.model.attention,
    }
    return generator_spec(
        config.model.generator,
        arguments,
        data.conditions.to_json(),
        config.data.catalog,
        (data.height, data.width, data.channels),
        config.data.pad_to,
    )


def build_discriminator_for(config: RunConfig, data: TrainingData) -> nn.Module:
    height, width = data.model_size
    return build_discriminator(
        config.model.discriminator,
        channels=data.channels,
        height=height,
        width=width,
        cardinalities=data.conditions.cardinalities,
        width_mult=config.model.d_width,
        attention=config.model.attention,
        auxiliary=config.model.auxiliary_weight > 0,
    )


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW -> uint8 NHWC."""
    return images.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def sample_images(generator: nn.Module, spec: dict[str, Any], codes: torch.Tensor, seed: int, batch_size: int = 500) -> np.ndarray:
    """uint8 samples at the catalog's size, from a private RNG so training randomness is untouched."""
    rng = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    height, width, _ = spec["output_size"]
    chunks = []
    for start in range(0, len(codes), batch_size):
        part = codes[start : start + batch_size].to(device)
        z = torch.randn(len(part), spec["arguments"]["z_dim"], generator=rng).to(device)
        chunks.append(to_uint8(crop_to(generator(z, part if part.shape[1] else None), height, width)))
    return np.concatenate(chunks) if chunks else np.zeros((0, height, width, spec["output_size"][2]), np.uint8)


def learning_rate_scale(train: TrainConfig, step: int, elapsed_seconds: float) -> float:
    """The schedule's factor on both learning rates. A time budget counts as the run's length when
    it ends first, so a linear decay reaches 0 when the budget does (then the decay follows the
    clock: a resumed budgeted run is close to, not identical with, an uninterrupted one)."""
    if train.lr_schedule == "constant":
        return 1.0
    progress = step / train.steps
    if train.max_minutes:
        progress = max(progress, elapsed_seconds / (60 * train.max_minutes))
    return min(1.0, max(0.0, (1 - progress) / (1 - train.decay_from)))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for ema_param, param in zip(ema.parameters(), model.parameters()):
        ema_param.lerp_(param, 1 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)


class GANTrainer:
    """Owns the models, optimisers and the two update phases; the loop in `train_gan` drives it."""

    def __init__(self, config: RunConfig, data: TrainingData, env: distributed.DistributedEnv):
        self.config, self.data, self.env = config, data, env
        self.spec = describe_generator(config, data)
        self.G = build_from_spec(self.spec).to(env.device)
        self.D = build_discriminator_for(config, data).to(env.device)
        distributed.broadcast_module(self.G, env)
        distributed.broadcast_module(self.D, env)
        # after the broadcast: collectives want plainly contiguous tensors
        self.memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
        self.G.to(memory_format=self.memory_format)
        self.D.to(memory_format=self.memory_format)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        train = config.train
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=train.lr_g, betas=train.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=train.lr_d, betas=train.betas)
        self.loss = build_loss(config.loss.kind)
        self.conditional = bool(data.conditions.names)
        self.local_batch = train.batch_size // env.world_size

    def autocast(self):
        """bfloat16 forward passes when asked; bf16 keeps fp32's exponent range, so no loss scaling."""
        if self.config.train.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.env.device.type, dtype=torch.bfloat16)

    def set_learning_rate_scale(self, scale: float) -> None:
        for optimizer, base in ((self.opt_g, self.config.train.lr_g), (self.opt_d, self.config.train.lr_d)):
            for group in optimizer.param_groups:
                group["lr"] = base * scale

    def _codes(self, codes: torch.Tensor) -> torch.Tensor | None:
        return codes.to(self.env.device) if self.conditional else None

    def _d(self, images: torch.Tensor, codes: torch.Tensor | None):
        return self.D(diff_augment(images, self.config.data.augment), codes)

    def _fake(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn(n, self.config.model.z_dim, device=self.env.device)
        codes = self._codes(self.data.random_codes(n))
        return self.G(z, codes), codes

    def _apply(self, loss: torch.Tensor, module: nn.Module, optimizer: torch.optim.Optimizer) -> bool:
        """Backward and step unless the loss is non-finite on any rank; returns whether it stepped."""
        optimizer.zero_grad(set_to_none=True)
        if not distributed.all_ranks_finite(loss.detach(), self.env):
            return False
        loss.backward()
        distributed.average_gradients(module, self.env)
        optimizer.step()
        return True

    def discriminator_step(self, real: torch.Tensor, real_codes: torch.Tensor | None) -> tuple[dict[str, float], bool]:
        with self.autocast():
            loss, logs = self._discriminator_loss(real, real_codes)
        logs["d_loss"] = loss.item()
        return logs, self._apply(loss, self.D, self.opt_d)

    def _discriminator_loss(self, real: torch.Tensor, real_codes: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            fake, fake_codes = self._fake(len(real))
        real_out, fake_out = self._d(real, real_codes), self._d(fake, fake_codes)
        loss = self.loss.discriminator(real_out, fake_out)
        logs = {"d_adv": loss.item()}
        if self.config.model.auxiliary_weight > 0:
            aux = auxiliary_classification_loss(real_out, real_codes) + auxiliary_classification_loss(fake_out, fake_codes)
            loss = loss + self.config.model.auxiliary_weight * aux
            logs["d_aux"] = aux.item()
        if self.config.loss.kind == "wgan-gp":
            penalty = gradient_penalty(self.D, real, fake, real_codes if self.conditional else None)
            loss = loss + self.config.loss.gp_weight * penalty
            logs["d_gp"] = penalty.item()
        if self.config.loss.r1_gamma > 0:
            penalty = r1_penalty(self.D, real, real_codes)
            loss = loss + 0.5 * self.config.loss.r1_gamma * penalty
            logs["d_r1"] = penalty.item()
        return loss, logs

    def generator_step(self, real: torch.Tensor, real_codes: torch.Tensor | None) -> tuple[dict[str, float], bool]:
        self.D.requires_grad_(False)
        try:
            with self.autocast():
                loss, logs = self._generator_loss(real, real_codes)
            logs["g_loss"] = loss.item()
            return logs, self._apply(loss, self.G, self.opt_g)
        finally:
            self.D.requires_grad_(True)

    def _generator_loss(self, real: torch.Tensor, real_codes: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        fake, fake_codes = self._fake(self.local_batch)
        fake_out = self._d(fake, fake_codes)
        real_out = self._d(real, real_codes) if self.loss.needs_real_for_generator else None
        loss = self.loss.generator(fake_out, real_out)
        logs = {"g_adv": loss.item()}
        if self.config.model.auxiliary_weight > 0:
            aux = auxiliary_classification_loss(fake_out, fake_codes)
            loss = loss + self.config.model.auxiliary_weight * aux
            logs["g_aux"] = aux.item()
        return loss, logs

    def train_step(self, stream: BatchStream) -> tuple[dict[str, float], dict[str, float], bool]:
        """D phase (`n_dis` updates on real vs generated batches), then the G phase; returns both
        phases' logs and whether every update was applied (False: a non-finite loss was skipped)."""
        stepped = True
        for _ in range(self.config.train.n_dis):
            real, real_codes = self.data.batch(stream.next())
            real, real_codes = real.to(self.env.device, memory_format=self.memory_format), self._codes(real_codes)
            d_logs, ok = self.discriminator_step(real, real_codes)
            stepped &= ok
        g_logs, ok = self.generator_step(real, real_codes)
        return d_logs, g_logs, stepped and ok

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """All weights and optimiser moments as tensors, plus the optimisers' JSON metadata."""
        tensors: dict[str, torch.Tensor] = {}
        for prefix, module in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            tensors.update(ckpt.module_tensors(module, prefix))
        optimizer_meta = {}
        for prefix, optimizer in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            flat, optimizer_meta[prefix] = ckpt.flatten_optimizer(optimizer, prefix)
            tensors.update(flat)
        return tensors, optimizer_meta

    def restore(self, checkpoint: ckpt.Checkpoint) -> None:
        for prefix, module in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            ckpt.load_module(module, prefix, checkpoint.tensors)
        for prefix, optimizer in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            ckpt.restore_optimizer(optimizer, prefix, checkpoint.tensors, checkpoint.state["optimizers"][prefix])

    def init_from(self, checkpoint: ckpt.Checkpoint) -> list[str]:
        """Fine-tuning: take every weight whose name and shape match (G from its EMA copy);
        returns the names left at their fresh initialisation (e.g. embeddings of new categories)."""
        fresh = []
        for prefix, module in (("G_ema", self.G), ("D", self.D)):
            own = module.state_dict()
            offered = {k[len(prefix) + 1 :]: v for k, v in checkpoint.tensors.items() if k.startswith(prefix + ".")}
            matching = {k: v for k, v in offered.items() if k in own and own[k].shape == v.shape}
            fresh += [f"{prefix}.{k}" for k in own if k not in matching]
            module.load_state_dict({**own, **matching})
        self.G_ema.load_state_dict(self.G.state_dict())
        return fresh


def _validation_codes(data: TrainingData, count: int, seed: int) -> torch.Tensor:
    return data.random_codes(count, generator=torch.Generator().manual_seed(seed))


def _category_labels(data: TrainingData, codes: torch.Tensor) -> np.ndarray | None:
    if "category" not in data.conditions.names:
        return None
    return codes[:, data.conditions.names.index("category")].numpy()


def _log(run_dir: Path, row: dict[str, Any]) -> None:
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def train_gan(
    config: RunConfig,
    runs_root: Path = Path("runs"),
    resume: Path | None = None,
    init_from: Path | None = None,
    dry_run: bool = False,
    show_progress: bool = True,
    console=None,
) -> TrainResult:
    """Train a GAN as `config` says and return where its run folder is.

    resume: a run folder (or checkpoint) to continue exactly; refused if hyper-parameters changed.
    init_from: a checkpoint whose weights start a new run (fine-tuning on another catalog).
    dry_run: build data and models, print what would run, write nothing.
    """
    say = console.print if console is not None else print
    env = distributed.setup()
    try:
        torch.set_num_threads(config.train.threads or torch.get_num_threads())
        catalog = load_catalog(config.data.catalog)
        data = TrainingData(catalog, config.data)
        # before seeding: fitting a missing feature network must not shift the training RNG
        evaluator = _make_evaluator(catalog, config, say) if (env.is_main and not dry_run) else None
        torch.manual_seed(config.train.seed + env.rank)
        stream = BatchStream(len(data), config.train.batch_size // env.world_size, env.rank, env.world_size, config.train.seed)
        if config.train.batch_size % env.world_size:
            raise ProdgenError(f"train.batch_size={config.train.batch_size} must divide evenly over {env.world_size} processes.")
        trainer = GANTrainer(config, data, env)

        if dry_run:
            counts = {name: sum(p.numel() for p in m.parameters()) for name, m in (("G", trainer.G), ("D", trainer.D))}
            say(dump_yaml(config))
            say(f"dry run: {len(data)} train images {data.width}x{data.height}x{data.channels} (model size {data.model_size}), "
                f"conditions {data.conditions.names or 'none'}, G {counts['G']:,} params, D {counts['D']:,} params; nothing written.")
            return TrainResult(run_dir=Path(), step=0, stopped_because="dry run", best=None)

        state: dict[str, Any] = {"step": 0, "elapsed": 0.0, "best": None, "evals_since_best": 0, "history": []}
        if resume is not None:
            checkpoint = ckpt.read_checkpoint(Path(resume))
            changes = hyperparameter_changes(validate_config(checkpoint.state["config"]), config)
            if changes:
                raise ProdgenError(
                    f"Refusing to resume {checkpoint.path}: the config differs from the checkpoint's in\n  "
                    + "\n  ".join(changes)
                    + f"\nStart a new run, or resume with the checkpoint's config (only {', '.join(sorted(SCHEDULE_KEYS))} may change)."
                )
            trainer.restore(checkpoint)
            stream.load_state_dict(checkpoint.state["stream"])
            distributed.set_rng_state(checkpoint.tensors[f"rng.rank{env.rank}"], env)
            fixed_z, fixed_codes = checkpoint.tensors["fixed.z"], checkpoint.tensors["fixed.codes"]
            state.update({k: checkpoint.state[k] for k in state})
            run_dir = checkpoint.path.parent
        else:
            if init_from is not None:
                fresh = trainer.init_from(ckpt.read_checkpoint(Path(init_from)))
                say(f"initialised from {init_from}; {len(fresh)} tensors kept fresh (shape or name differ)")
            grid_rng = torch.Generator().manual_seed(config.train.seed + 12345)
            per_row = 10
            fixed_codes = _fixed_grid_codes(data, per_row, grid_rng)
            fixed_z = torch.randn(len(fixed_codes), config.model.z_dim, generator=grid_rng)
            run_dir = distributed.broadcast_object(new_run_dir(runs_root, config.name) if env.is_main else None, env)
            if env.is_main:
                write_text_atomic(run_dir / "config.yaml", dump_yaml(config))
                write_json_atomic(run_dir / "generator.json", trainer.spec)

        writer = _tensorboard(run_dir) if env.is_main else None
        if env.is_main:
            say(f"run folder: {run_dir}\nwatch it with: tensorboard --logdir {run_dir / 'tensorboard'}")
        val_codes = _validation_codes(data, config.eval.samples, config.train.seed)

        def save(step: int) -> Path | None:
            tensors, optimizer_meta = trainer.state_tensors()
            rng_states = distributed.gather_rng_states(env)
            if not env.is_main:
                return None
            tensors.update({f"rng.rank{r}": s for r, s in enumerate(rng_states)})
            tensors.update({"fixed.z": fixed_z, "fixed.codes": fixed_codes})
            payload = dict(state, step=step, config=config.model_dump(mode="json"), generator=trainer.spec,
                           stream=stream.state_dict(), optimizers=optimizer_meta, world_size=env.world_size)
            path = ckpt.write_checkpoint(run_dir, step, tensors, payload)
            ckpt.prune_checkpoints(run_dir, config.eval.keep_last)  # the newest is always kept, so a new best survives
            return path

        step, bad_steps, stopped = state["step"], 0, "finished all steps"
        saved_step = step if resume is not None else -1
        started = time.perf_counter() - state["elapsed"]
        state_step_at_start, elapsed_at_start = step, state["elapsed"]
        last_good = str(ckpt.latest_checkpoint(run_dir)) if resume is not None else "none yet"
        progress = make_progress() if (show_progress and env.is_main) else None
        task = progress.add_task("training", total=config.train.steps, completed=step) if progress else None
        if progress:
            progress.start()

        def out_of_time() -> bool:
            return bool(config.train.max_minutes) and time.perf_counter() - started > 60 * config.train.max_minutes

        try:
            budget_spent = distributed.broadcast_object(out_of_time(), env)
            while step < config.train.steps and not budget_spent:
                lr_scale = learning_rate_scale(config.train, step, time.perf_counter() - started)
                trainer.set_learning_rate_scale(lr_scale)
                d_logs, g_logs, stepped = trainer.train_step(stream)
                step += 1
                if stepped:
                    bad_steps = 0
                    decay = min(config.train.ema_decay, (1 + step) / (10 + step))
                    update_ema(trainer.G_ema, trainer.G, decay)
                else:
                    bad_steps += 1
                    say(f"[yellow]warning:[/] non-finite loss at step {step} (D {d_logs.get('d_loss')}, G {g_logs.get('g_loss')}); update skipped")
                    if bad_steps >= config.train.nan_patience:
                        raise TrainingDiverged(
                            f"Training diverged: {bad_steps} consecutive steps with non-finite losses (last at step {step}). "
                            f"Last good checkpoint: {last_good}. Lower the learning rates or change the loss, then --init-from or --resume it."
                        )
                elapsed = time.perf_counter() - started
                state["elapsed"] = elapsed

                if env.is_main and step % config.eval.log_every == 0:
                    throughput = (step - state_step_at_start) * config.train.batch_size * config.train.n_dis / max(elapsed - elapsed_at_start, 1e-9)
                    row = {"step": step, "seconds": round(elapsed, 2), "real_images_per_second": round(throughput, 1), "lr_scale": round(lr_scale, 4), **d_logs, **g_logs}
                    _log(run_dir, row)
                    for key, value in row.items():
                        if key not in ("step", "seconds") and value is not None:
                            writer.add_scalar(f"train/{key}", value, step)
                if progress:
                    progress.update(task, completed=step, description=f"training  D {d_logs['d_loss']:.3f}  G {g_logs['g_loss']:.3f}")
                if env.is_main and step % config.eval.sample_every == 0:
                    _write_grid(run_dir, writer, trainer, fixed_z, fixed_codes, step)

                # the last step is always scored, so a decayed learning rate's final state can be the best
                budget_spent = out_of_time()
                is_eval = step % config.eval.every == 0 or step == config.train.steps or budget_spent
                improved = False
                if is_eval and env.is_main and evaluator is not None:
                    scores = _validate(evaluator, trainer, data, val_codes, config)
                    value = scores.pop("selection")
                    state["history"].append({"step": step, "seconds": round(elapsed, 1), **scores})
                    for key, metric in scores.items():
                        writer.add_scalar(f"val/{key}", metric, step)
                    write_json_atomic(run_dir / "history.json", state["history"])
                    improved = state["best"] is None or value < state["best"]["value"]
                    if improved:
                        state["best"], state["evals_since_best"] = {"metric": config.eval.metric, "value": value, "step": step}, 0
                    elif config.train.lr_schedule == "constant" or lr_scale < 1:
                        # a plateau before the decay is expected (the decay is what gets past it): patience counts from then on
                        state["evals_since_best"] += 1
                    if progress:
                        progress.console.print(f"step {step}: val {config.eval.metric} {value:.3f} (best {state['best']['value']:.3f} at {state['best']['step']})")
                # rank 0's clock decides for every rank, so all stop after the same step
                improved, budget_spent = distributed.broadcast_object((improved, budget_spent), env)
                is_last = step == config.train.steps or budget_spent
                if step % config.eval.checkpoint_every == 0 or improved or is_last:
                    path, saved_step = save(step), step
                    if path is not None:
                        last_good = str(path)
                        if improved:
                            ckpt.mark_best(run_dir, path, config.eval.metric, state["best"]["value"], step)
                if distributed.broadcast_object(state["evals_since_best"] >= config.eval.patience, env):
                    stopped = f"early stop: no {config.eval.metric} improvement in {config.eval.patience} evaluations"
                    break
            if budget_spent and stopped == "finished all steps":
                stopped = f"time budget of {config.train.max_minutes} min reached"
            if saved_step != step:  # stopped early: keep the final state too
                save(step)
        finally:
            if progress:
                progress.stop()
            if writer is not None:
                writer.close()
        if env.is_main:
            say(f"stopped at step {step}: {stopped}; best {state['best']}")
        return TrainResult(run_dir=run_dir, step=step, stopped_because=stopped, best=state["best"], history=state["history"])
    finally:
        distributed.teardown(env)


def _fixed_grid_codes(data: TrainingData, per_row: int, rng: torch.Generator) -> torch.Tensor:
    """One row per category (or value of the first condition), so the grid reads like a catalog."""
    if not data.conditions.names:
        return torch.zeros((per_row * 4, 0), dtype=torch.long)
    rows = []
    for value in range(data.conditions.cardinalities[0]):
        matching = torch.nonzero(data.codes[:, 0] == value).flatten()
        pick = matching[torch.randint(len(matching), (per_row,), generator=rng)]
        rows.append(data.codes[pick])
    return torch.cat(rows)


def _write_grid(run_dir: Path, writer, trainer: GANTrainer, fixed_z: torch.Tensor, fixed_codes: torch.Tensor, step: int) -> None:
    with torch.no_grad():
        codes = fixed_codes.to(trainer.env.device) if trainer.conditional else None
        images = trainer.G_ema(fixed_z.to(trainer.env.device), codes)
        height, width, _ = trainer.spec["output_size"]
        grid = make_grid(to_uint8(crop_to(images, height, width)), ncols=10)
    save_png(grid, run_dir / "samples" / f"step-{step:07d}.png")
    save_png(grid, run_dir / "samples" / "latest.png")
    writer.add_image("samples", grid, step, dataformats="HWC")


def _make_evaluator(catalog, config: RunConfig, say):
    """Validation scores in the catalog's own feature space; a catalog without a feature network gets one trained now."""
    from prodgen.metrics.evaluate import Evaluator
    from prodgen.metrics.features import fit_feature_network, load_feature_network

    try:
        network = load_feature_network(catalog.name)
    except ProdgenError:
        say(f"no feature network for {catalog.name!r} yet: training one for validation scores (prodgen eval fit-features)")
        network = fit_feature_network(catalog, seed=config.train.seed)
    return Evaluator(catalog, reference_split="val", feature_net=network, seed=config.train.seed)


def _validate(evaluator, trainer: GANTrainer, data: TrainingData, codes: torch.Tensor, config: RunConfig) -> dict[str, float]:
    images = sample_images(trainer.G_ema, trainer.spec, codes, seed=config.train.seed)
    labels = _category_labels(data, codes)
    metrics = [config.eval.metric] + (["class_consistency"] if labels is not None else [])
    result = evaluator.evaluate(images, labels, metrics=metrics, floors=False)
    scores = {k: float(v) for k, v in result["metrics"].items() if isinstance(v, (int, float))}
    scores["selection"] = scores[SELECTION_KEYS[config.eval.metric]]
    return scores


def _tensorboard(run_dir: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))

