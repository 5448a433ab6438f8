"""Recording an alignment step: both sides with ``reprod_log``, a diff report, one table row.

Every step saves ``{step}_paddle.npy`` and ``{step}_torch.npy`` and writes
``{step}_diff.txt`` with ``reprod_log``'s ``ReprodDiffHelper`` under the output folder.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass

import numpy as np


@dataclass
class StepResult:
    step: str
    max_diff: float
    threshold: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.max_diff <= self.threshold


def record(out_dir: str, step: str, paddle_side: dict, torch_side: dict, threshold: float,
            relative: bool = False) -> float:
    """Save both sides with reprod_log, write the diff report, return the max abs diff.

    With ``relative`` both sides are first divided by ``max(1, |torch value|)``, so that
    large sums are compared at float32's relative precision (files and report alike).
    """
    from reprod_log import ReprodDiffHelper, ReprodLogger

    if relative:
        scale = {k: np.maximum(1.0, np.abs(np.asarray(v, np.float64))) for k, v in torch_side.items()}
        paddle_side = {k: np.asarray(v, np.float64) / scale[k] for k, v in paddle_side.items()}
        torch_side = {k: np.asarray(v, np.float64) / scale[k] for k, v in torch_side.items()}
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    paths = {}
    root.handlers = []  # reprod_log logs every value through the root logger
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # reprod_log also echoes to stdout
            for side, data in (("paddle", paddle_side), ("torch", torch_side)):
                logger = ReprodLogger()
                for key, value in data.items():
                    logger.add(key, np.asarray(value, dtype=np.float64).reshape(np.shape(value) or (1,)))
                paths[side] = os.path.join(out_dir, f"{step}_{side}.npy")
                logger.save(paths[side])
            helper = ReprodDiffHelper()
            helper.compare_info(helper.load_info(paths["paddle"]), helper.load_info(paths["torch"]))
            helper.report(diff_method="max", diff_threshold=threshold,
                          path=os.path.join(out_dir, f"{step}_diff.txt"))
    finally:  # reprod_log adds root handlers and lowers the root level on every call
        for handler in root.handlers:
            handler.close()
        root.handlers = handlers
        root.setLevel(level)
    return max(float(np.max(np.abs(np.asarray(paddle_side[k], np.float64)
                                   - np.asarray(torch_side[k], np.float64)))) for k in paddle_side)


def format_table(results: list[StepResult]) -> str:
    lines = [f"{'step':<13} {'max diff':>10} {'threshold':>10}  result  detail"]
    for r in results:
        lines.append(f"{r.step:<13} {r.max_diff:>10.2e} {r.threshold:>10.0e}  "
                     f"{'pass' if r.passed else 'FAIL':<6}  {r.detail}")
    return "\n".join(lines)
