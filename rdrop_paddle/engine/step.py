"""One optimizer step of R-Drop training: two passes, accumulation, AMP, data-parallel sync."""
from __future__ import annotations

import contextlib
import time

import paddle

from rdrop_paddle.engine.optim import load_optimizer_state, optimizer_state
from rdrop_paddle.errors import DataLoadingError
from rdrop_paddle.losses.two_pass import rdrop_forward


def global_grad_norm(parameters) -> float:
    """L2 norm of all gradients (before clipping)."""
    squares = [paddle.sum(paddle.square(p.grad.astype("float32")))
               for p in parameters if p.grad is not None]
    return float(paddle.sqrt(paddle.add_n(squares))) if squares else 0.0


class TrainStep:
    """Accumulates ``accum`` micro-batches, then steps optimizer, scaler and LR schedule.

    ``accumulate`` runs the forward/backward passes and returns this rank's mean
    ``loss``/``ce``/``kl``; the caller decides (after agreeing with the other ranks)
    whether to ``apply`` the update or stop.  Gradients are all-reduced only on the
    last micro-batch (``no_sync`` before it).  With activation recomputation the
    data-parallel reducer cannot follow the replayed backward (its hooks fire twice), so
    ``sync_by_hand`` runs every micro-batch under ``no_sync`` and all-reduces the gradients
    once after the last (``fused_allreduce_gradients``: scaled by 1/world, then summed, as
    the reducer does).  ``apply`` steps the LR schedule before
    the optimizer, as the official loop does.  fp16 uses a GradScaler, which skips steps
    with non-finite gradients and lowers its scale; bf16 needs none.
    """

    def __init__(self, model, criterion, optimizer, scheduler, mode: str, accum: int,
                 amp: str = "off", amp_level: str = "O1", distributed: bool = False,
                 raw_model=None, sync_by_hand: bool = False, ema=None) -> None:
        self.model, self.criterion, self.optimizer, self.scheduler = model, criterion, optimizer, scheduler
        self.raw_model = raw_model or model  # the unwrapped layer, for parameter names
        self.mode, self.accum, self.distributed = mode, accum, distributed
        self.sync_by_hand = distributed and sync_by_hand
        self.amp_dtype = {"fp16": "float16", "bf16": "bfloat16"}.get(amp)
        self.amp_level = amp_level
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15) if amp == "fp16" else None
        self.standin_shape = None  # [micro, C, H, W]: the zero images a rank whose data failed steps on
        self.standin = None  # or standin(micro) -> (inputs, labels) NumPy (a text data set's)
        self.failure = None  # the DataLoadingError of this rank (data parallel only)
        self.reader_seconds = 0.0  # time spent waiting for batches (the caller resets it)
        self.ema = ema  # a ModelEma of raw_model, updated after each optimizer step, or None

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(True, level=self.amp_level, dtype=self.amp_dtype)

    def accumulate(self, batches) -> list[float]:
        sums = paddle.zeros([3], dtype="float32")
        batch = None
        for i in range(self.accum):
            batch = self._next(batches, batch)
            images, labels = batch
            last = i == self.accum - 1
            unsynced = self.distributed and (self.sync_by_hand or not last)
            with (self.model.no_sync() if unsynced else contextlib.nullcontext()):
                with self._autocast():
                    out = rdrop_forward(self.model, self.criterion, images, labels, self.mode)
                loss = out["loss"] / self.accum
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            sums += paddle.stack([out["loss"], out["ce"], out["kl"]]).detach() / self.accum
        if self.sync_by_hand:
            from paddle.distributed.fleet.utils.hybrid_parallel_util import fused_allreduce_gradients

            fused_allreduce_gradients(list(self.raw_model.parameters()), None)
        return sums.tolist()  # one device-to-host copy per step

    def _next(self, batches, previous):
        """The next micro-batch.  Under data parallel a rank whose data fails keeps stepping
        (on the previous micro-batch, or a zero one) so the other ranks are not left waiting
        in the gradient all-reduce; it records the error in ``failure`` for the caller to
        share after the step (the update is never applied)."""
        if self.failure is None:
            start = time.perf_counter()
            try:
                return next(batches)
            except DataLoadingError as e:
                if not self.distributed:
                    raise
                self.failure = e
            finally:
                self.reader_seconds += time.perf_counter() - start
        if previous is None:
            if self.standin is not None:
                inputs, labels = self.standin(self.standin_shape[0])
                return {k: paddle.to_tensor(v) for k, v in inputs.items()}, paddle.to_tensor(labels)
            previous = (paddle.zeros(self.standin_shape, dtype="float32"),
                        paddle.zeros([self.standin_shape[0]], dtype="int64"))
        return previous

    def grad_norm(self) -> float:
        norm = global_grad_norm(self.model.parameters())
        return norm / float(self.scaler._scale) if self.scaler else norm

    def apply(self) -> None:
        self.scheduler.step()
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.raw_model)
        self.discard()

    def discard(self) -> None:
        # Free the gradients rather than zero them (PyTorch's set_to_none): buffers kept
        # across steps scatter long-lived blocks through the heap and raise peak memory.
        self.optimizer.clear_grad(set_to_zero=False)

    def state_dict(self) -> dict:
        return {"optimizer": optimizer_state(self.optimizer, self.raw_model),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None}

    def set_state_dict(self, state: dict) -> None:
        load_optimizer_state(self.optimizer, self.raw_model, state["optimizer"])
        self.scheduler.set_state_dict(state["scheduler"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    @property
    def loss_scale(self) -> float | None:
        return float(self.scaler._scale) if self.scaler else None


def finite_parameters(layer: paddle.nn.Layer) -> bool:
    """Whether every parameter of ``layer`` is finite (checked before anything is saved)."""
    return all(bool(paddle.isfinite(p).all()) for p in layer.parameters())
