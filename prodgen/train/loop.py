"""The one training loop: every model family trains here. Read `train` top to bottom.

The loop owns what all families share: the step and time budget, the learning-rate schedule, EMA
copies, the non-finite-loss guard, validation with early stopping, checkpoints and exact resume,
log.jsonl and TensorBoard, sample grids, the progress bar, and DistributedDataParallel under
torchrun. The family (prodgen/train/family.py) owns its networks, optimisers, training step,
validation score and samples.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prodgen import distributed as process_group
from prodgen.config import RESUME_KEYS, RunConfig, TrainConfig, dump_yaml, family_class, hyperparameter_changes, resume_config, validate_config
from prodgen.data.catalog import load_catalog
from prodgen.errors import ProdgenError
from prodgen.fileio import write_json_atomic, write_text_atomic
from prodgen.imaging import save_png
from prodgen.progress import make_progress
from prodgen.train import checkpoint as ckpt
from prodgen.train import distributed
from prodgen.train.data import BatchLoader, GlobalBatches, TrainingData, read_ahead_depth
from prodgen.train.family import Family
from prodgen.train.randomness import SharedRandom
from prodgen.train.runs import new_run_dir

# the shared stream of a run's random numbers starts apart from the weights' initialisation
SHARED_STREAM_OFFSET = 0x5EED
CPP_COMPILERS = ("c++", "g++", "clang++")  # TorchInductor writes C++ for CPUs and builds it with one of these
GRID_SEED_OFFSET = 12345


class TrainingDiverged(ProdgenError):
    """Too many consecutive non-finite losses."""


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    stopped_because: str
    best: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)


def learning_rate_scale(train: TrainConfig, step: int, elapsed_seconds: float) -> float:
    """The schedule's factor on every learning rate. A time budget counts as the run's length when
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


def saved_config(resume: Path, overrides: list[str] | None = None) -> RunConfig:
    """The config a run was trained with (from its latest checkpoint), with the `--set` overrides a resume allows."""
    return resume_config(validate_config(ckpt.read_state(resume)["config"], origin=f"run {resume}"), overrides or [])


def build_networks(family: Family, init_from: Path | None = None, say=print) -> None:
    """The family's networks on the device (optionally initialised from another run), wrapped for
    DDP, their EMA copies, and the optimisers."""
    config, env = family.config, family.env
    memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
    for name, network in family.build_networks().items():
        if config.train.sync_batchnorm:
            network = distributed.sync_batchnorm(network, env)
        family.nets[name] = network.to(env.device, memory_format=memory_format)
    if init_from is not None:
        fresh = family.init_from(ckpt.read_checkpoint(Path(init_from)).tensors)
        say(f"initialised from {init_from}; {len(fresh)} tensors kept fresh (shape or name differ)")
    # DDP starts every rank from rank 0's weights; the EMA copies start from those
    family.parallel = {name: distributed.wrap(net, env, family.find_unused_parameters(name)) for name, net in family.nets.items()}
    for copy_name, source in family.ema.items():
        family.nets[copy_name] = copy.deepcopy(family.nets[source]).eval().requires_grad_(False)
    if config.train.compile:
        compile_trained_networks(family, say)
    if config.train.precision == "bf16" and env.device.type == "cpu" and not cpu_has_bf16_units():
        say("[yellow]warning:[/] train.precision bf16: this CPU has no bfloat16 units (AVX-512 BF16 or AMX), so autocast emulates them and "
            "training runs slower than in fp32 (catalog-64 on one core: half the images per second, benchmarks/RESULTS.md); use fp32 here")
    family.nets.update({name: module.to(env.device) for name, module in family.build_state().items()})
    family.optimizers = family.build_optimizers()


def cpu_has_bf16_units() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX-512 BF16 or AMX tiles). torch answers
    through private helpers; where they are missing, the CPU is taken to have them (no warning)."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check is None or check() for check in checks)


def compile_trained_networks(family: Family, say=print) -> None:
    """Compile the networks the optimisers train, in place (their parameter names, and so the
    checkpoints, stay as they are; the EMA copies, used only for samples and validation, stay eager).
    TorchInductor writes C++ on CPUs: without a compiler the run goes on uncompiled, only slower."""
    if family.env.device.type == "cpu" and not any(shutil.which(name) for name in CPP_COMPILERS):
        say(f"train.compile: no C++ compiler found ({', '.join(CPP_COMPILERS)}), so the networks train uncompiled; install one (apt-get install g++) for faster steps")
        return
    for name in family.parallel:
        family.nets[name].compile()


def train(
    config: RunConfig,
    runs_root: Path = Path("runs"),
    resume: Path | None = None,
    init_from: Path | None = None,
    dry_run: bool = False,
    show_progress: bool = True,
    console=None,
) -> TrainResult:
    """Train the model `config` describes, in a new numbered run folder under `runs_root`.

    resume: a run folder (or checkpoint) to continue exactly; `config` must be its own (see
        `saved_config`): only the keys in RESUME_KEYS may differ.
    init_from: a checkpoint whose weights start a new run (fine-tuning on another catalog).
    dry_run: build data and networks, print the resolved config, write nothing.
    """
    say = console.print if console is not None else print
    env = process_group.setup()
    loader = None
    try:
        torch.set_num_threads(config.train.threads or torch.get_num_threads())
        catalog = load_catalog(config.data.catalog)
        data = TrainingData(catalog, config.data)
        batches = GlobalBatches(data.draws, config.train.batch_size, env.rank, env.world_size, config.train.seed)
        family = family_class(config.family)(config, data, env)
        # rank 0 scores validation; made before seeding: fitting a missing feature network must not shift the run's randomness
        validator = family.make_validator(catalog, say) if (env.is_main and not dry_run) else None
        torch.manual_seed(config.train.seed)
        build_networks(family, None if resume else init_from, say)

        if dry_run:
            sizes = ", ".join(f"{name} {sum(p.numel() for p in net.parameters()):,}" for name, net in family.parallel.items())
            say(dump_yaml(config))
            say(f"dry run: family {config.family}, {len(data)} train images{' (and their mirror images)' if data.mirror else ''} {data.width}x{data.height}x{data.channels} (model size "
                f"{data.model_size}), conditions {data.conditions.names or 'none'}, parameters: {sizes}; nothing written.")
            return TrainResult(run_dir=Path(), step=0, stopped_because="dry run", best=None)

        memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
        depth = read_ahead_depth(config.train.prefetch, env.device)
        loader = BatchLoader(data, batches, depth, prepare=lambda batch: batch.to(env.device, memory_format))
        random = SharedRandom(config.train.seed + SHARED_STREAM_OFFSET, env.rank, env.world_size, env.device)
        base_lrs = {name: [group["lr"] for group in opt.param_groups] for name, opt in family.optimizers.items()}
        state: dict[str, Any] = {"step": 0, "elapsed": 0.0, "best": None, "evals_since_best": 0, "history": []}

        if resume is not None:
            checkpoint = ckpt.read_checkpoint(Path(resume))
            _check_resumable(checkpoint, config, family, env)
            for name, net in family.nets.items():
                ckpt.load_module(net, name, checkpoint.tensors)
            for name, optimizer in family.optimizers.items():
                ckpt.restore_optimizer(optimizer, name, checkpoint.tensors, checkpoint.state["optimizers"][name])
            loader.load_state_dict(checkpoint.state["stream"])
            random.set_state(checkpoint.tensors["rng.shared"])
            own_state = checkpoint.tensors.get(f"rng.rank{env.rank}")
            if own_state is not None:
                distributed.set_rng_state(own_state, env)
            fixed = {k.removeprefix("fixed."): v for k, v in checkpoint.tensors.items() if k.startswith("fixed.")}
            state.update({k: checkpoint.state[k] for k in state})
            run_dir = checkpoint.path.parent
        else:
            fixed = family.fixed_inputs(torch.Generator().manual_seed(config.train.seed + GRID_SEED_OFFSET))
            run_dir = distributed.broadcast_object(new_run_dir(runs_root, config.name) if env.is_main else None, env)
            if env.is_main:
                write_text_atomic(run_dir / "config.yaml", dump_yaml(config))
                write_json_atomic(run_dir / "generator.json", family.inference_spec())

        writer = _tensorboard(run_dir) if env.is_main else None
        if env.is_main:
            say(f"run folder: {run_dir}\nwatch it with: tensorboard --logdir {run_dir / 'tensorboard'}")

        def save(step: int) -> Path | None:
            """Every rank takes part (RNG states and replica fingerprints are gathered); rank 0 writes."""
            rng_states = distributed.gather_rng_states(env)
            replicas = distributed.replica_fingerprints({name: family.nets[name] for name in family.parallel}, env)
            if not env.is_main:
                return None
            diverged = [name for name, prints in replicas.items() if len(set(prints)) > 1]
            if diverged:
                raise RuntimeError(f"The processes' copies of {', '.join(diverged)} differ at step {step}: {replicas}")
            tensors: dict[str, torch.Tensor] = {}
            for name, net in family.nets.items():
                tensors.update(ckpt.module_tensors(net, name))
            optimizer_meta = {}
            for name, optimizer in family.optimizers.items():
                flat, optimizer_meta[name] = ckpt.flatten_optimizer(optimizer, name)
                tensors.update(flat)
            tensors.update({f"rng.rank{r}": s for r, s in enumerate(rng_states)})
            tensors["rng.shared"] = random.state()
            tensors.update({f"fixed.{k}": v.cpu().contiguous() for k, v in fixed.items()})
            payload = dict(state, step=step, config=config.model_dump(mode="json"), generator=family.inference_spec(),
                           export_network=family.export_network, stream=loader.state_dict(), optimizers=optimizer_meta, world_size=env.world_size,
                           replicas=replicas)
            if family.encoder_network is not None:
                payload.update(encoder=family.encoder_spec(), encoder_network=family.encoder_network)
            path = ckpt.write_checkpoint(run_dir, step, tensors, payload)
            ckpt.prune_checkpoints(run_dir, config.eval.keep_last)  # the newest is always kept, so a new best survives
            return path

        step, bad_steps, stopped = state["step"], 0, "finished all steps"
        saved_step = step if resume is not None else -1
        started = time.perf_counter() - state["elapsed"]
        step_at_start, elapsed_at_start, batches_read = step, state["elapsed"], 0
        last_good = str(ckpt.latest_checkpoint(run_dir)) if resume is not None else "none yet"
        progress = make_progress() if (show_progress and env.is_main) else None
        task = progress.add_task("training", total=config.train.steps, completed=step) if progress else None
        if progress:
            progress.start()

        def next_batch():
            nonlocal batches_read
            batches_read += 1
            return loader.next()

        def out_of_time() -> bool:
            return bool(config.train.max_minutes) and time.perf_counter() - started > 60 * config.train.max_minutes

        try:
            budget_spent = distributed.broadcast_object(out_of_time(), env)
            while step < config.train.steps and not budget_spent:
                # 1. the schedule, then the family's step
                lr_scale = learning_rate_scale(config.train, step, time.perf_counter() - started)
                for name, optimizer in family.optimizers.items():
                    for group, base in zip(optimizer.param_groups, base_lrs[name]):
                        group["lr"] = base * lr_scale
                family.all_updates_applied, family.step = True, step
                logs = family.train_step(next_batch, random)
                step += 1

                # 2. EMA after an applied step; a run of non-finite losses stops training
                if family.all_updates_applied:
                    bad_steps = 0
                    decay = min(config.train.ema_decay, (1 + step) / (10 + step))
                    for copy_name, source in family.ema.items():
                        update_ema(family.nets[copy_name], family.nets[source], decay)
                else:
                    bad_steps += 1
                    say(f"[yellow]warning:[/] non-finite loss at step {step} ({_loss_text(logs)}); update skipped")
                    if bad_steps >= config.train.nan_patience:
                        raise TrainingDiverged(
                            f"Training diverged: {bad_steps} consecutive steps with non-finite losses (last at step {step}). "
                            f"Last good checkpoint: {last_good}. Lower the learning rates or change the loss, then --init-from or --resume it."
                        )
                elapsed = time.perf_counter() - started
                state["elapsed"] = elapsed

                # 3. logs, progress, sample grid (rank 0)
                if env.is_main and step % config.eval.log_every == 0:
                    throughput = batches_read * config.train.batch_size / max(elapsed - elapsed_at_start, 1e-9)
                    row = {"step": step, "seconds": round(elapsed, 2), "real_images_per_second": round(throughput, 1), "lr_scale": round(lr_scale, 4), **logs}
                    _log(run_dir, row)
                    for key, value in row.items():
                        if key not in ("step", "seconds") and value is not None:
                            writer.add_scalar(f"train/{key}", value, step)
                if progress:
                    progress.update(task, completed=step, description=f"training  {_loss_text(logs)}")
                if env.is_main and step % config.eval.sample_every == 0:
                    _write_grid(run_dir, writer, family.sample_grid(fixed), step)

                # 4. validation (rank 0); the last step is always scored, so a decayed learning rate's final state can be the best
                budget_spent = out_of_time()
                is_eval = step % config.eval.every == 0 or step == config.train.steps or budget_spent
                improved = False
                if is_eval and env.is_main:
                    scores = family.validate(validator)
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

                # 5. checkpoints; rank 0's clock and scores decide for every rank, so all stop after the same step
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
            images_per_second = batches_read * config.train.batch_size / max(state["elapsed"] - elapsed_at_start, 1e-9)
            say(f"stopped at step {step} ({step - step_at_start} this session, {images_per_second:.1f} real images/s): {stopped}; best {state['best']}")
        return TrainResult(run_dir=run_dir, step=step, stopped_because=stopped, best=state["best"], history=state["history"])
    finally:
        if loader is not None:
            loader.close()
        process_group.teardown(env)


def _check_resumable(checkpoint: ckpt.Checkpoint, config: RunConfig, family: Family, env: process_group.DistributedEnv) -> None:
    """Refuse a resume that would not continue the same run: another config, or another number of
    processes where BatchNorm makes the result depend on it."""
    changes = hyperparameter_changes(validate_config(checkpoint.state["config"]), config)
    if changes:
        raise ProdgenError(
            f"Refusing to resume {checkpoint.path}: the config differs from the checkpoint's in\n  " + "\n  ".join(changes)
            + f"\nA resume keeps the run's own config; only {', '.join(sorted(RESUME_KEYS))} may change."
        )
    saved_world = int(checkpoint.state.get("world_size", 1))
    normalised = [name for name, net in family.parallel.items() if distributed.has_batchnorm(net)]
    if saved_world != env.world_size and normalised:
        raise ProdgenError(
            f"{checkpoint.path} was trained by {saved_world} process(es), this resume runs {env.world_size}. The BatchNorm layers of "
            f"{', '.join(normalised)} normalise each process's share of the batch, so another process count would change the result: "
            f"resume it on {saved_world} process(es) (torchrun --nproc_per_node {saved_world})."
        )


def _loss_text(logs: dict[str, float]) -> str:
    return "  ".join(f"{key} {value:.3f}" for key, value in logs.items() if key.endswith("loss"))


def _log(run_dir: Path, row: dict[str, Any]) -> None:
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def _write_grid(run_dir: Path, writer, grid, step: int) -> None:
    save_png(grid, run_dir / "samples" / f"step-{step:07d}.png")
    save_png(grid, run_dir / "samples" / "latest.png")
    writer.add_image("samples", grid, step, dataformats="HWC")


def _tensorboard(run_dir: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
