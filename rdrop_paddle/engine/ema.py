"""An exponential moving average of a model's weights (Polyak averaging; timm ``ModelEmaV2``,
PaddleClas ``ExponentialMovingAverage``).

After the n-th optimizer step (n = 1, 2, ...) each floating-point entry of the state dict is
updated as

    ema = d * ema + (1 - d) * weight,   d = min(decay, n / (9 + n)) with warm-up, else decay

starting from the weights the run starts with.  The warm-up is TensorFlow's
``ExponentialMovingAverage(num_updates=...)`` rule: early on the average follows the weights
closely, so that a short fine-tune (a few hundred steps at decay 0.9998) does not end with an
average still near its starting point.  The average is kept in float32 on the
model's device, saved with each checkpoint (``model_ema.pdparams``) and restored on resume,
so resuming stays bit-exact.
"""
from __future__ import annotations

import contextlib

import numpy as np
import paddle


class ModelEma:
    """The EMA of ``model``'s weights with ``decay`` in (0, 1)."""

    def __init__(self, model: paddle.nn.Layer, decay: float, warmup: bool = False) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay, self.warmup = decay, warmup
        self.updates = 0  # optimizer steps averaged so far (set from the step on resume)
        self.state = {k: v.detach().astype("float32").clone() for k, v in model.state_dict().items()
                      if v.dtype in (paddle.float32, paddle.float16, paddle.bfloat16, paddle.float64)}

    @paddle.no_grad()
    def update(self, model: paddle.nn.Layer) -> None:
        """One averaging step towards ``model``'s current weights."""
        self.updates += 1
        decay = min(self.decay, self.updates / (9.0 + self.updates)) if self.warmup else self.decay
        weights = model.state_dict()
        for key, average in self.state.items():
            paddle.assign(average * decay + weights[key].astype("float32") * (1.0 - decay), average)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.state.items()}

    def set_state_dict(self, state: dict, updates: int = 0) -> None:
        """Load a saved average (keys and shapes checked by the caller) made by ``updates`` steps."""
        self.updates = updates
        for key, average in self.state.items():
            paddle.assign(paddle.to_tensor(np.asarray(state[key], dtype=np.float32)), average)

    @contextlib.contextmanager
    def applied(self, model: paddle.nn.Layer):
        """``model`` holds the averaged weights inside the block, its own again after it."""
        own = {k: v.clone() for k, v in model.state_dict().items() if k in self.state}
        model.set_state_dict({k: v.astype(own[k].dtype) for k, v in self.state.items()})
        try:
            yield model
        finally:
            model.set_state_dict(own)
