"""PaddleNLP checkpoints (issue 43): ``model_state.pdparams`` + PaddleNLP's ``config.json``,
as ``PaddlePaddle/ernie-3.0-*-zh`` ship them, converted by ``tools/convert_weights.py --format
paddlenlp`` (and ``auto``) and compared with PaddleNLP's own ``ErnieForSequenceClassification``
/ ``BertForSequenceClassification`` forward on the same weights (``tests/paddlenlp_reference.py``)."""
import json
import os

import numpy as np
import paddle
import pytest

from helpers import one_error_line, run_tool
from paddlenlp_reference import checkpoint, package
from text_reference import VOCAB, write_lines

TEXTS, PAIRS = ["the cat is good", "好天气 the dog", "not bad!"], ["the movie", "is", "bad . cat"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return package(tmp_path_factory.mktemp("paddlenlp"))


def _folder(root, kind, folder):
    """A PaddleNLP folder (weights, config, vocab.txt, tokenizer_config.json) and PaddleNLP's logits."""
    from rdrop_paddle.data.text import Tokenizer

    os.makedirs(folder, exist_ok=True)
    write_lines(os.path.join(folder, "vocab.txt"), VOCAB)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "tokenizer_class": f"{kind.capitalize()}Tokenizer"}, f)
    batch = Tokenizer.from_pretrained(str(folder))(TEXTS, PAIRS, max_length=32)
    return batch, checkpoint(root, kind, folder, batch["input_ids"], batch["token_type_ids"], len(VOCAB) + 5)


@pytest.mark.parametrize("kind,fmt", [("ernie", "paddlenlp"), ("bert", "auto")])
def test_logits_equal_paddlenlp(root, tmp_path, kind, fmt):
    from rdrop_paddle.models import from_pretrained

    batch, want = _folder(root, kind, tmp_path / "pnlp")
    res = run_tool("tools/convert_weights.py", "--format", fmt, "--src", tmp_path / "pnlp", "--out", tmp_path / "pd")
    assert res.returncode == 0, res.stderr[-2000:]
    model = from_pretrained(str(tmp_path / "pd"), 3)
    model.eval()
    got = model(**{k: paddle.to_tensor(v) for k, v in batch.items()}).numpy()
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_a_hugging_face_format_flag_on_a_paddlenlp_folder_is_one_line(root, tmp_path):
    _folder(root, "ernie", tmp_path / "pnlp")
    res = run_tool("tools/convert_weights.py", "--format", "hf", "--src", tmp_path / "pnlp", "--out", tmp_path / "pd")
    assert "use --format paddlenlp" in one_error_line(res) and not os.path.exists(tmp_path / "pd")


def test_a_fused_paddlenlp_model_is_refused(root, tmp_path):
    _folder(root, "bert", tmp_path / "pnlp")
    cfg = json.loads((tmp_path / "pnlp" / "config.json").read_text())
    (tmp_path / "pnlp" / "config.json").write_text(json.dumps({**cfg, "fuse": True}))
    res = run_tool("tools/convert_weights.py", "--src", tmp_path / "pnlp", "--out", tmp_path / "pd")
    assert "fuse True is not built here" in one_error_line(res) and not os.path.exists(tmp_path / "pd")
