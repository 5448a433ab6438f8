"""Text classification (issue 37): the BERT/ERNIE classifier against transformers, the
weight conversion, the WordPiece tokenizer against BertTokenizerFast, the data sources in
their published layouts, F1/MCC against scikit-learn, the official bert_rdrop objective."""
import json
import os

import numpy as np
import paddle
import pytest
import torch

from rdrop_paddle.convert.text import convert_text_folder
from rdrop_paddle.data.text import Tokenizer
from rdrop_paddle.data.text.sources import clue, glue, text_folder
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.models import from_pretrained
from tests.helpers import one_error_line, run_tool
from tests.text_reference import VOCAB, batch, clue_tnews, hf_model, write_lines
from tests.text_reference import text_folder as make_text_folder


def _logits_pair(kind, tmp_path, safetensors=True, **config):
    src, out = tmp_path / f"hf_{kind}", tmp_path / f"pd_{kind}"
    ref = hf_model(kind, src, safetensors=safetensors, **config)
    assert convert_text_folder(str(src), str(out)) == []
    model = from_pretrained(str(out), 3)
    model.eval()
    inputs = batch()
    with torch.no_grad():
        expected = ref(**{k: torch.tensor(v) for k, v in inputs.items()}).logits.numpy()
    got = model(**{k: paddle.to_tensor(v) for k, v in inputs.items()}).numpy()
    return got, expected


@pytest.mark.parametrize("kind,safetensors,config", [
    ("bert", True, {}), ("ernie", True, {}), ("bert", False, {"hidden_act": "relu"}),
    ("ernie", False, {"hidden_act": "gelu_new", "num_hidden_layers": 3, "classifier_dropout": 0.3})])
def test_logits_equal_transformers(kind, safetensors, config, tmp_path):
    got, expected = _logits_pair(kind, tmp_path, safetensors, **config)
    assert np.abs(expected).max() > 0.1  # logits far from zero: the comparison means something
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_ernie_task_type_embeddings_matter(tmp_path):
    """ERNIE 3.0's task-type table is loaded and added (zeros' ids: its row 0)."""
    hf_model("ernie", tmp_path / "hf")
    convert_text_folder(str(tmp_path / "hf"), str(tmp_path / "pd"))
    model = from_pretrained(str(tmp_path / "pd"), 3)
    model.eval()
    inputs = {k: paddle.to_tensor(v) for k, v in batch().items()}
    before = model(**inputs).numpy()
    table = model.ernie.embeddings.task_type_embeddings.weight
    table.set_value(np.zeros(table.shape, np.float32))
    assert np.abs(model(**inputs).numpy() - before).max() > 1e-3


def test_head_of_another_size_starts_fresh(tmp_path):
    hf_model("bert", tmp_path / "hf", classes=3)
    convert_text_folder(str(tmp_path / "hf"), str(tmp_path / "pd"))
    notices = []
    model = from_pretrained(str(tmp_path / "pd"), 5, notice=notices.append)
    assert model.classifier.weight.shape == [32, 5] and "starts fresh" in notices[0]


def test_converted_folder_is_whole(tmp_path):
    hf_model("bert", tmp_path / "hf")
    (tmp_path / "hf" / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    res = run_tool("tools/convert_weights.py", "--format", "hf", "--src", tmp_path / "hf", "--out", tmp_path / "pd")
    assert res.returncode == 0, res.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "pd")) == ["config.json", "model.pdparams", "tokenizer_config.json",
                                                   "vocab.txt"]
    assert json.loads((tmp_path / "pd" / "tokenizer_config.json").read_text()) == {"do_lower_case": False}
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no staging folder left


def _bad(tmp_path, break_it):
    src = tmp_path / "hf"
    hf_model("bert", src)
    break_it(src)
    res = run_tool("tools/convert_weights.py", "--format", "hf", "--src", src, "--out", tmp_path / "out")
    assert not os.path.exists(tmp_path / "out")
    return one_error_line(res)


def test_config_of_another_model_type(tmp_path):
    def vit(src):
        cfg = json.loads((src / "config.json").read_text())
        (src / "config.json").write_text(json.dumps({**cfg, "model_type": "vit"}))
    line = _bad(tmp_path, vit)
    assert "config.json" in line and "model_type 'vit'" in line


def test_vocab_larger_than_the_embedding(tmp_path):
    line = _bad(tmp_path, lambda src: (src / "vocab.txt").write_text("\n".join(VOCAB + [f"w{i}" for i in range(50)])))
    assert "vocab.txt" in line and "vocab_size" in line


def test_truncated_safetensors(tmp_path):
    def cut(src):
        path = src / "model.safetensors"
        path.write_bytes(path.read_bytes()[:-100])
    line = _bad(tmp_path, cut)
    assert "model.safetensors" in line


def test_weights_of_another_size(tmp_path):
    def grow(src):
        cfg = json.loads((src / "config.json").read_text())
        (src / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 64}))
    line = _bad(tmp_path, grow)
    assert "intermediate.dense.weight" in line


def test_pickled_weights_go_through_the_restricted_unpickler(tmp_path):
    import pickle
    import zipfile

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    def evil(src):
        os.remove(src / "model.safetensors")
        with zipfile.ZipFile(src / "pytorch_model.bin", "w") as zf:
            zf.writestr("archive/data.pkl", pickle.dumps(Evil()))
    line = _bad(tmp_path, evil)
    assert "pytorch_model.bin" in line and not os.path.exists(tmp_path / "pwned")


# -- tokenizer ------------------------------------------------------------------------------

TEXTS = ["The cats!", "Émile, the dog.", "好天气 xyz", "", "a\tb\u00a0c\x00d \u200b e", "thecatdog" * 20, "THE CAT",
         "naïve café", "\u0301", "天" * 50]
PAIRS = ["dog", "", "好", "the " * 30, "é", "x", "Cat", "movie", "!", "not bad"]


@pytest.mark.parametrize("lower", [True, False])
def test_tokenizer_equals_bert_tokenizer_fast(lower, tmp_path):
    from transformers import BertTokenizerFast

    hf_model("bert", tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lower}))
    ref = BertTokenizerFast.from_pretrained(str(tmp_path), do_lower_case=lower)
    tok = Tokenizer.from_pretrained(str(tmp_path))
    assert tok.do_lower_case is lower
    for max_length in (4, 9, 40):
        for pairs in (None, PAIRS):
            want = ref(TEXTS, pairs, truncation=True, max_length=max_length, padding=True)
            got = tok(TEXTS, pairs, max_length=max_length)
            for key in ("input_ids", "token_type_ids", "attention_mask"):
                np.testing.assert_array_equal(got[key], np.asarray(want[key]), err_msg=f"{key} {max_length}")


def test_vocab_line_ends_read_as_transformers(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nthe\r\ncat\r\n")
    from rdrop_paddle.io.vocab import read_vocab

    assert read_vocab(str(path)) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat"]


# -- data sources -----------------------------------------------------------------------------

def test_text_folder_reads_names_and_pairs(tmp_path):
    root = make_text_folder(tmp_path, train=["a b\tpos", "c\td\tneg"][:1] * 3, dev=["x\tneg"])
    train, dev, names = text_folder(root, False)
    assert names == ["neg", "pos"] and train.texts == ["a b"] * 3 and list(train.labels) == [1, 1, 1]
    assert train.pairs is None and list(dev.labels) == [0]


@pytest.mark.parametrize("line,reason", [("no tab here", "tabs"), ("text\tunknown", "label 'unknown'"),
                                         (b"caf\xe9\tpos", "not UTF-8"), ("   \tpos", "empty text")])
def test_bad_line_named_or_skipped(line, reason, tmp_path):
    root = make_text_folder(tmp_path)
    good = (tmp_path / "train.txt").read_bytes()
    (tmp_path / "train.txt").write_bytes(good + (line if isinstance(line, bytes) else line.encode()) + b"\n" + good)
    with pytest.raises(UserInputError, match=rf"train.txt:9: .*{reason}"):
        text_folder(root, False)
    train, _, _ = text_folder(root, True)
    assert len(train.texts) == 16 and len(train.skipped) == 1 and ":9:" in train.skipped[0]


def test_glue_layouts(tmp_path):
    """Lines as GLUE ships them (MRPC with its BOM, CoLA without a header)."""
    layouts = {
        "sst-2": (["sentence\tlabel", "hide new secretions from the parental units \t0", "a gem\t1"],
                  [("hide new secretions from the parental units ", None, 0), ("a gem", None, 1)]),
        "cola": (["gj04\t1\t\tOur friends won't buy this analysis.", "gj04\t0\t*\tThey drank the pub."],
                 [("Our friends won't buy this analysis.", None, 1), ("They drank the pub.", None, 0)]),
        "mrpc": (["\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String", "1\t702876\t702977\tAmrozi said .\tHe said ."],
                 [("Amrozi said .", "He said .", 1)]),
        "qnli": (["index\tquestion\tsentence\tlabel", "0\tWhen?\tIn 1990.\tnot_entailment", "1\tWho?\tHe.\tentailment"],
                 [("When?", "In 1990.", 1), ("Who?", "He.", 0)])}
    for task, (lines, expected) in layouts.items():
        root = tmp_path / task
        root.mkdir()
        for name in ("train.tsv", "dev.tsv"):
            write_lines(root / name, lines)
        train, dev, names = glue(str(root), task, False)
        pairs = train.pairs or [None] * len(train.texts)
        assert list(zip(train.texts, pairs, train.labels.tolist())) == expected, task


def test_glue_header_of_another_task(tmp_path):
    write_lines(tmp_path / "train.tsv", ["sentence\tlabel", "a\t0"])
    with pytest.raises(UserInputError, match="train.tsv:1: the header has no column 'question'"):
        glue(str(tmp_path), "qnli", False)


def test_clue_tnews_and_afqmc(tmp_path):
    train, dev, names = clue(clue_tnews(tmp_path / "tnews"), "tnews", False)
    assert names == ["news_story", "news_culture"] and train.texts[:2] == ["好天气", "the cat"]
    assert train.labels.tolist()[:2] == [1, 0]
    (tmp_path / "afqmc").mkdir()
    rows = [json.dumps({"sentence1": "好", "sentence2": "天气", "label": "1"}, ensure_ascii=False)]
    for name in ("train.json", "dev.json"):
        write_lines(tmp_path / "afqmc" / name, rows + ['{"sentence1": "a", "sentence2": "b", "label": "7"}'])
    with pytest.raises(UserInputError, match=r"train.json:2: label '7'"):
        clue(str(tmp_path / "afqmc"), "afqmc", False)
    train, _, names = clue(str(tmp_path / "afqmc"), "afqmc", True)
    assert names == ["0", "1"] and train.pairs == ["天气"] and train.labels.tolist() == [1]


# -- metrics and loss --------------------------------------------------------------------------

@pytest.mark.parametrize("classes", [2, 4])
def test_f1_and_mcc_equal_sklearn(classes):
    from sklearn.metrics import f1_score, matthews_corrcoef

    from rdrop_paddle.engine.metrics import class_counts, f1, mcc

    rng = np.random.default_rng(classes)
    y, p = rng.integers(0, classes, 200), rng.integers(0, classes, 200)
    p[:120] = y[:120]
    counts = class_counts(y, p, classes)
    assert f1(counts) == pytest.approx(100 * f1_score(y, p, average="binary" if classes == 2 else "macro"))
    assert mcc(counts) == pytest.approx(100 * matthews_corrcoef(y, p))
    assert mcc(class_counts(y, np.zeros_like(y), classes)) == 0.0  # undefined: 0, as sklearn


def test_loss_is_the_official_bert_rdrop_objective():
    """dropreg/R-Drop huggingface_transformer_src/.../modeling_bert.py ``bert_kl``:
    CE(p) + CE(q) + 0.5 * (KL_sum(q||p) + KL_sum(p||q)) / 2, i.e. vit_src's scaling at alpha 0.25."""
    from rdrop_paddle.losses import RDropCrossEntropy

    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 2, (6, 3)).astype(np.float32), rng.normal(0, 2, (6, 3)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    p_t, q_t = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ce = torch.nn.CrossEntropyLoss()
    loss = ce(p_t, torch.tensor(y)) + ce(q_t, torch.tensor(y))
    p, q = torch.log_softmax(p_t, -1), torch.log_softmax(q_t, -1)
    kl = torch.nn.functional.kl_div(p, q.exp(), reduction="none").sum()
    reverse = torch.nn.functional.kl_div(q, p.exp(), reduction="none").sum()
    loss = loss + 0.5 * (kl + reverse) / 2.
    loss.backward()
    pp, qq = paddle.to_tensor(a, stop_gradient=False), paddle.to_tensor(b, stop_gradient=False)
    out = RDropCrossEntropy(alpha=0.25, convention="vit_src")(pp, qq, paddle.to_tensor(y))
    out["loss"].backward()
    assert float(out["loss"]) == pytest.approx(float(loss.detach()), rel=1e-6)
    np.testing.assert_allclose(pp.grad.numpy(), p_t.grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(qq.grad.numpy(), q_t.grad.numpy(), atol=1e-6)


def test_polynomial_schedule_equals_transformers():
    from transformers import get_polynomial_decay_schedule_with_warmup

    from rdrop_paddle.engine.optim import warmup_polynomial

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-5)
    ref = get_polynomial_decay_schedule_with_warmup(opt, 137, 2296)
    for step in (0, 1, 136, 137, 138, 1000, 2295, 2296, 2400):
        assert warmup_polynomial(step, 137, 2296, 1e-5) == pytest.approx(ref.lr_lambdas[0](step), rel=1e-9)
