"""README.md and docs/: every ```python block is a complete program that runs on its own in a
fresh folder and exits 0; every relative link and anchor resolves; every tool, benchmark and
config a command names exists.  (Shell blocks are run by the tests of what they do: the
own-images walk-through, as written, by test_own_images.py; the TIPC chain by test_tipc.py.)"""
import glob
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT

PAGES = [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "CONTRIBUTING.md")] + sorted(
    glob.glob(os.path.join(ROOT, "docs", "*.md")))
TEXT = {path: open(path, encoding="utf-8").read() for path in PAGES}
BLOCKS = [(os.path.relpath(path, ROOT), i, code) for path, text in TEXT.items()
          for i, code in enumerate(re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M))]


def test_the_pages_have_python_blocks():
    assert len(BLOCKS) >= 5 and len(TEXT) >= 10


@pytest.mark.parametrize("page,index,code", BLOCKS, ids=[f"{p}:{i}" for p, i, _ in BLOCKS])
def test_python_block_runs(page, index, code, tmp_path):
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert res.returncode == 0, f"{page} block {index}:\n{code}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr


def slug(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    title = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", title.strip().lower())
    return re.sub(r"[^\w\- ]", "", title).replace(" ", "-")


def anchors(text: str) -> set[str]:
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", prose, flags=re.M)}


def test_slug_follows_github():
    assert slug("Inference backends for ViT-B/16") == "inference-backends-for-vit-b16"
    assert slug("TIPC: the training–inference chain") == "tipc-the-traininginference-chain"


@pytest.mark.parametrize("page", PAGES, ids=[os.path.relpath(p, ROOT) for p in PAGES])
def test_links_resolve(page):
    text = TEXT[page]
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(file):
            broken.append(f"{target}: no file {os.path.relpath(file, ROOT)}")
        elif anchor and (not file.endswith(".md") or anchor not in anchors(open(file, encoding="utf-8").read())):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=[os.path.relpath(p, ROOT) for p in PAGES])
def test_commands_name_files_that_exist(page):
    named = set(re.findall(r"\bpython (?:-m paddle\.distributed\.launch [^\n]*?)?((?:tools|benchmarks)/\w+\.py)",
                           TEXT[page]))
    named |= set(re.findall(r"-c (configs/[\w.]+\.yaml)", TEXT[page]))
    missing = sorted(n for n in named if not os.path.exists(os.path.join(ROOT, n)))
    assert not missing, f"{os.path.relpath(page, ROOT)} names {missing}"
