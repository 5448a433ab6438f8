"""Workarounds for Paddle's CPU build, kept in one place so they can go when Paddle improves.

- :mod:`~rdrop_paddle.cpu.process`: threads, MKL code path, stride kernels, malloc
  (:func:`configure`; the tools call it for you).
- :mod:`~rdrop_paddle.cpu.kernels` and :mod:`~rdrop_paddle.cpu.dropout`: ``Linear``,
  ``LayerNorm`` and ``Dropout`` with the same parameters and results as Paddle's, faster on
  CPU.  Models pick them up through :mod:`rdrop_paddle.models.layers`;
  ``RDROP_CPU_KERNELS=0`` makes them use Paddle's own layers instead.

Importing this package does not import paddle.
"""
from rdrop_paddle.cpu.process import configure, configure_device, configure_environment, kernels_enabled

__all__ = ["configure", "configure_device", "configure_environment", "kernels_enabled"]
