"""R-Drop on any ``paddle.nn.Layer``: two dropout passes over the same inputs, then the loss.

The official README calls R-Drop "almost universal for supervised tasks": nothing here
knows the model.  Inputs may be a tensor, a tuple/list of them (``model(*inputs)``) or a
dict (``model(**inputs)``, e.g. ``input_ids``/``attention_mask`` for a paddlenlp model);
the output may be the logits tensor itself, or a named field of a dict/tuple output.

    p, q = two_pass(model, {"input_ids": ids, "attention_mask": mask}, output="logits")
    out = RDropCrossEntropy(alpha=0.3)(p, q, labels, pad_mask=mask)

``mode='concat'`` runs one forward over ``[x; x]`` (every tensor input concatenated along
the batch axis; other values passed as they are), ``mode='twice'`` runs two.  Dropout
masks are drawn per element either way, so both give two independent dropout passes; on
one device ``concat`` is usually faster.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import paddle

Key = Optional[Union[str, int]]
MODES = ("concat", "twice")


def _map_tensors(inputs: Any, fn) -> Any:
    if isinstance(inputs, paddle.Tensor):
        return fn(inputs)
    if isinstance(inputs, dict):
        return {k: _map_tensors(v, fn) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(_map_tensors(v, fn) for v in inputs)
    return inputs


def call(model, inputs: Any) -> Any:
    """``model(**inputs)`` for a dict, ``model(*inputs)`` for a tuple/list, else ``model(inputs)``."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (list, tuple)):
        return model(*inputs)
    return model(inputs)


def select(output: Any, key: Key) -> paddle.Tensor:
    """The logits in ``output``: itself (``key=None``), ``output[key]`` or ``output.key``."""
    if key is None:
        value = output
    elif isinstance(output, dict) or (isinstance(key, int) and isinstance(output, (list, tuple))):
        value = output[key]
    else:
        value = getattr(output, str(key))
    if not isinstance(value, paddle.Tensor):
        raise TypeError(f"model output {'' if key is None else f'field {key!r} '}is a "
                        f"{type(value).__name__}, not a tensor; pass output=<name of the logits>")
    return value


def two_pass(model, inputs: Any, mode: str = "concat", output: Key = None):
    """The logits of two dropout passes over ``inputs``: ``(p, q)``."""
    if mode == "concat":
        logits = select(call(model, _map_tensors(inputs, lambda t: paddle.concat([t, t], axis=0))), output)
        p, q = paddle.chunk(logits, 2, axis=0)
        return p, q
    if mode == "twice":
        return select(call(model, inputs), output), select(call(model, inputs), output)
    raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def rdrop_forward(model, criterion, inputs: Any, labels: paddle.Tensor, mode: str = "concat",
                  output: Key = None, pad_mask: Optional[paddle.Tensor] = None) -> dict:
    """Forward ``inputs`` and apply an :class:`~rdrop_paddle.losses.RDropCrossEntropy`:
    two passes when its alpha is positive, one for the baseline (alpha 0)."""
    if not criterion.needs_two_passes:
        return criterion(select(call(model, inputs), output), None, labels, pad_mask)
    p, q = two_pass(model, inputs, mode, output)
    return criterion(p, q, labels, pad_mask)
