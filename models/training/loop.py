"""The training loop behind `handpose train` (TensorFlow backend; one or several GPUs or CPU).

One step: a numpy batch from the task's pipeline (made in a background thread while the previous
step runs) -> forward with training=True -> the task's loss terms -> Adam (cosine or constant lr
with linear warm-up). Every `val_every` steps (and at step 0, the untrained network, and at the
end) the task validates on a fixed validation set; the best metric's weights are kept.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from handpose.errors import HandposeError
from models.training import run as runfiles
from models.training.tasks import Task, make_task

log = logging.getLogger(__name__)


def select_strategy() -> Any:
    """MirroredStrategy over all GPUs when there are several, else the default strategy.

    On CPU the TensorFlow thread pools are sized to the machine's cores.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if not gpus:
        cores = os.cpu_count() or 1
        try:
            tf.config.threading.set_intra_op_parallelism_threads(cores)
            tf.config.threading.set_inter_op_parallelism_threads(min(cores, 2))
        except RuntimeError:  # already initialised (tests, notebooks): keep TF's choice
            pass
    return tf.distribute.get_strategy()


def make_optimizer(config: dict[str, Any], total_steps: int) -> keras.optimizers.Optimizer:
    train = config["train"]
    lr = float(train["lr"])
    warmup = min(int(train["warmup"]), max(total_steps - 1, 0))
    if train["schedule"] == "cosine":
        schedule: Any = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr * 0.01 if warmup else lr,
            decay_steps=max(total_steps - warmup, 1),
            alpha=0.01,
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    else:
        schedule = lr
    if float(train["weight_decay"]) > 0:
        return keras.optimizers.AdamW(schedule, weight_decay=float(train["weight_decay"]))
    return keras.optimizers.Adam(schedule)


def save_optimizer(optimizer: keras.optimizers.Optimizer, path: Path) -> None:
    np.savez(path, **{f"v{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)})


def load_optimizer(optimizer: keras.optimizers.Optimizer, model: keras.Model, path: Path) -> None:
    optimizer.build(model.trainable_variables)
    with np.load(path) as data:
        if len(data.files) != len(optimizer.variables):
            raise HandposeError(
                f"{path} holds {len(data.files)} optimizer variables, the network needs "
                f"{len(optimizer.variables)}: the run folder belongs to another config"
            )
        for i, variable in enumerate(optimizer.variables):
            variable.assign(data[f"v{i}"])


def prefetch(make: Callable[[int], Any], start: int, stop: int, depth: int = 2) -> Iterator[Any]:
    """Yield make(step) for step in [start, stop), computed one or two steps ahead in a thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop_flag = threading.Event()

    def worker() -> None:
        for step in range(start, stop):
            if stop_flag.is_set():
                return
            try:
                item = make(step)
            except BaseException as error:  # handed to the consumer
                q.put(error)
                return
            q.put(item)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        for _ in range(start, stop):
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop_flag.set()
        while not q.empty():
            q.get_nowait()


LossFn = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


def make_train_step(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    loss_fn: LossFn,
    strategy: Any = None,
) -> Callable[[np.ndarray, dict[str, np.ndarray]], dict[str, Any]]:
    """A compiled step: (images (B, S, S, 3), targets) -> loss terms, weights updated.

    With a multi-replica strategy the batch is split evenly over the replicas and the gradients
    are summed (each replica's loss is divided by the replica count).
    """
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync

    def replica_step(images: Any, targets: dict[str, Any]) -> dict[str, Any]:
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            terms = loss_fn(outputs, targets)
            loss = terms["total"]
            if model.losses:
                loss = loss + tf.add_n(model.losses)
            scaled = loss / replicas
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return terms

    if replicas == 1:
        return tf.function(replica_step)

    @tf.function
    def distributed(images: Any, targets: dict[str, Any]) -> dict[str, Any]:
        terms = strategy.run(replica_step, args=(images, targets))
        return {
            k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in terms.items()
        }

    def split_and_run(images: np.ndarray, targets: dict[str, np.ndarray]) -> dict[str, Any]:
        def part(array: np.ndarray) -> Any:
            chunks = np.array_split(array, replicas)
            return strategy.experimental_distribute_values_from_function(
                lambda ctx: chunks[ctx.replica_id_in_sync_group]
            )

        return distributed(part(images), {k: part(v) for k, v in targets.items()})

    return split_and_run


def overfit(
    model: keras.Model,
    loss_fn: LossFn,
    images: np.ndarray,
    targets: dict[str, np.ndarray],
    steps: int,
    lr: float = 1e-3,
) -> list[float]:
    """Train on one fixed batch for `steps` steps; returns the total loss after each step."""
    optimizer = keras.optimizers.Adam(lr)
    step = make_train_step(model, optimizer, loss_fn)
    images = images.astype(np.float32)
    return [float(step(images, targets)["total"]) for _ in range(steps)]


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys and not isinstance(row[k], list | dict)]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open() as f:
        rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    for row in rows:
        row["step"] = int(row["step"])
    return rows


class Trainer:
    """Owns the model, optimizer, step function and run folder of one training run."""

    def __init__(
        self,
        config: dict[str, Any],
        out_dir: str | Path,
        resume: bool = False,
        command: str = "",
        progress: bool = True,
    ) -> None:
        import tensorflow as tf

        self.config = config
        self.out = Path(out_dir)
        self.progress = progress
        self.total_steps = int(config["train"]["steps"])
        state_path = self.out / runfiles.STATE_FILE
        if resume and not state_path.is_file():
            raise HandposeError(f"--resume: {self.out} has no {runfiles.STATE_FILE} to resume from")
        if not resume and state_path.is_file():
            raise HandposeError(
                f"{self.out} already holds a training run: pass --resume to continue it "
                "or choose another --out"
            )
        keras.utils.set_random_seed(int(config["train"]["seed"]))
        self.strategy = select_strategy()
        self.replicas = self.strategy.num_replicas_in_sync
        self.task: Task = make_task(config)
        with self.strategy.scope():
            self.model = runfiles.build_model(config)
            self.optimizer = make_optimizer(config, self.total_steps)
            self.optimizer.build(self.model.trainable_variables)
        init = str(config["model"].get("init") or "")
        if init and not resume and config["model"].get("init_by_name"):
            loaded, copied, fresh = runfiles.load_init_by_name(self.model, init)
            log.info("initial weights from %s: %d layers by name; new: %s", loaded, copied,
                     ", ".join(fresh) or "none")  # fmt: skip
        elif init and not resume:  # fine-tuning; on --resume the run's own checkpoint wins
            loaded = runfiles.load_init_weights(self.model, init)
            log.info("initial weights from %s", loaded)
        self.state: dict[str, Any] = {
            "step": 0,
            "best_metric": None,
            "best_step": None,
            "metric": self.task.metric,
            "time_s": 0.0,
        }
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        if resume:
            saved = json.loads((self.out / runfiles.CONFIG_FILE).read_text())
            # model.init only matters at step 0 (and runs older than the key lack it)
            same = {k: v for k, v in config["model"].items() if k != "init"} == {
                k: v for k, v in saved.get("model", {}).items() if k != "init"
            }
            if not same or saved.get("task") != config["task"]:
                raise HandposeError(
                    f"--resume: {self.out}/config.json describes another network than the config"
                )
            self.state.update(json.loads(state_path.read_text()))
            self.model.load_weights(self.out / runfiles.LAST_WEIGHTS)
            load_optimizer(self.optimizer, self.model, self.out / runfiles.LAST_OPTIMIZER)
        saved_config = dict(config, command=command)
        (self.out / runfiles.CONFIG_FILE).write_text(json.dumps(saved_config, indent=2) + "\n")
        self.metrics_rows: list[dict[str, Any]] = []
        if resume and (self.out / "metrics.json").is_file():
            self.metrics_rows = json.loads((self.out / "metrics.json").read_text())["validations"]
        self.loss_rows = _read_rows(self.out / "losses.csv") if resume else []
        self._step_fn = self._make_step_fn(tf)
        self._predict_fn = tf.function(lambda x: self.model(x, training=False))

    def _make_step_fn(self, tf: Any) -> Callable[..., dict[str, Any]]:
        return make_train_step(self.model, self.optimizer, self.task.loss, self.strategy)

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        out = self._predict_fn(images.astype(np.float32))
        return {k: np.asarray(v) for k, v in out.items()}

    def validate(self, step: int) -> dict[str, Any]:
        t0 = time.time()
        metrics = self.task.validate(self.predict)
        row = {"step": step, **metrics, "val_time_s": round(time.time() - t0, 2)}
        self.metrics_rows = [r for r in self.metrics_rows if int(r["step"]) != step] + [row]
        return row

    def save(self, step: int, elapsed: float, row: dict[str, Any] | None) -> None:
        out = self.out
        self.state["step"] = step
        self.state["time_s"] = round(elapsed, 1)
        if row is not None:
            value = float(row[self.task.metric])
            best = self.state["best_metric"]
            if best is None or value > best or not (out / runfiles.BEST_WEIGHTS).is_file():
                self.state["best_metric"], self.state["best_step"] = value, step
                self.model.save_weights(out / runfiles.BEST_WEIGHTS)
        # write to temporary names first so an interruption never leaves a torn checkpoint
        tmp_w = out / "checkpoints/last.tmp.weights.h5"
        tmp_o = out / "checkpoints/last.tmp.optimizer.npz"
        self.model.save_weights(tmp_w)
        save_optimizer(self.optimizer, tmp_o)
        os.replace(tmp_w, out / runfiles.LAST_WEIGHTS)
        os.replace(tmp_o, out / runfiles.LAST_OPTIMIZER)
        (out / runfiles.STATE_FILE).write_text(json.dumps(self.state, indent=2) + "\n")
        _write_rows(out / "metrics.csv", self.metrics_rows)
        _write_rows(out / "losses.csv", self.loss_rows)
        (out / "metrics.json").write_text(
            json.dumps(
                {"metric": self.task.metric, "state": self.state, "validations": self.metrics_rows},
                indent=1,
            )
            + "\n"
        )
        from models.training.plots import write_plots

        write_plots(out, self.loss_rows, self.metrics_rows, self.task.metric)

    def run(self) -> dict[str, Any]:
        """Train to `train.steps`; returns the final state (+ first and last validation rows)."""
        from tqdm import tqdm

        train = self.config["train"]
        start = int(self.state["step"])
        val_every, log_every = int(train["val_every"]), int(train["log_every"])
        elapsed0 = float(self.state.get("time_s", 0.0))
        t0 = time.time()
        if start == 0 and not self.metrics_rows:
            row = self.validate(0)
            print(f"step 0 (untrained): {_fmt(row)}", file=sys.stderr, flush=True)
            self.save(0, elapsed0, row)
        seed = int(train["seed"])
        batches = prefetch(lambda s: self.task.train_batch(s, seed), start, self.total_steps)
        bar = tqdm(
            total=self.total_steps,
            initial=start,
            disable=not self.progress,
            dynamic_ncols=True,
            file=sys.stderr,
            mininterval=1.0,
        )
        sums: dict[str, float] = {}
        count = 0
        step = start
        try:
            for step, (images, targets) in enumerate(batches, start=start + 1):
                terms = self._step_fn(images, targets)
                values = {k: float(v) for k, v in terms.items()}
                if not math.isfinite(values["total"]):
                    raise HandposeError(
                        f"loss became {values['total']} at step {step}: "
                        "lower train.lr in the config"
                    )
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                bar.update(1)
                if step % log_every == 0 or step == self.total_steps:
                    mean = {k: v / count for k, v in sums.items()}
                    lr = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))
                    self.loss_rows.append({"step": step, **mean, "lr": lr})
                    bar.set_postfix({k: f"{v:.3g}" for k, v in mean.items()}, refresh=False)
                    sums, count = {}, 0
                if step % val_every == 0 or step == self.total_steps:
                    row = self.validate(step)
                    bar.write(f"step {step}: {_fmt(row)}", file=sys.stderr)
                    self.save(step, elapsed0 + time.time() - t0, row)
        except KeyboardInterrupt:
            bar.close()
            if step > int(self.state["step"]):
                self.save(step, elapsed0 + time.time() - t0, None)
                print(
                    f"interrupted at step {step}: saved {self.out / runfiles.LAST_WEIGHTS}; "
                    "continue with --resume",
                    file=sys.stderr,
                )
            raise
        bar.close()
        if int(self.state["step"]) < self.total_steps:  # steps already reached before resume
            self.save(step, elapsed0 + time.time() - t0, None)
        return {
            **self.state,
            "first": self.metrics_rows[0] if self.metrics_rows else None,
            "last": self.metrics_rows[-1] if self.metrics_rows else None,
        }


def _fmt(row: dict[str, Any]) -> str:
    return "  ".join(
        f"{k}={v:.4g}" for k, v in row.items() if k != "step" and isinstance(v, int | float)
    )


def train(
    config: dict[str, Any],
    out_dir: str | Path,
    resume: bool = False,
    command: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) one training run; returns the final state dict."""
    return Trainer(config, out_dir, resume=resume, command=command, progress=progress).run()


def clean(out_dir: str | Path) -> None:
    """Remove a run folder (tests)."""
    shutil.rmtree(out_dir, ignore_errors=True)
