"""Every ```python block of README.md is a complete program: each runs on its own, in a
fresh folder, and exits 0.  The quickstart's inference block expects nothing but the
package (it writes PNG files of the held-out digits)."""
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT

BLOCKS = re.findall(r"^```python\n(.*?)^```", open(os.path.join(ROOT, "README.md"), encoding="utf-8").read(),
                    flags=re.S | re.M)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path):
    code = BLOCKS[index]
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert res.returncode == 0, f"block {index}:\n{code}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr
