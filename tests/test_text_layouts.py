"""Text models as people have them (issue 43): every folder transformers 5 writes, built in
the test with transformers' own ``save_pretrained`` on a WordPiece vocabulary trained with
``tokenizers``, compared with ``AutoTokenizer`` / ``AutoModelForSequenceClassification`` on
the same folder: tokenizer options, ``tokenizer.json``-only folders, sharded weights,
``id2label``, headless checkpoints; and the layouts that must be refused in one line."""
import json
import os
import shutil

import numpy as np
import paddle
import pytest
import torch

from helpers import one_error_line, run_tool

WORDS = ["the", "cat", "Café", "naïve", "Émile", "résumé", "好", "天气", "東京", "[MASK]", "[SEP]", "[CLS]", "[UNK]",
         "[PAD]", "don't", "U.S.A.", "hello-world", "ÀÉÎÕÜ", "straße", "ﬁne", "e\u0301t\u00e9", "🙂", "12,345.67",
         "\t", "\u00a0", "\u200b", "movie", "MOVIE", "good", "not", "bad", "thecatdogmovie", "x" * 120, "café"]


def corpus(n=200, seed=0):
    """``n`` varied texts and pairs: accents, cased and uncased words, CJK, special tokens
    typed in the text, odd whitespace, emoji, words past WordPiece's 100 characters, and some
    long enough to be truncated at 128 tokens."""
    rng = np.random.default_rng(seed)

    def text():
        length = int(rng.choice([1, 3, 8, 20, 90]))
        return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), length))
    return [text() for _ in range(n)], [text() for _ in range(n)]


def trained_vocab(texts) -> dict:
    """A WordPiece vocabulary trained with ``tokenizers`` on ``texts`` (as people train one)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=400, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(texts + [t.lower() for t in texts], trainer)
    return tok.get_vocab()


OPTIONS = {"uncased": {}, "lower_keep_accents": {"do_lower_case": True, "strip_accents": False},
           "cased_strip_accents": {"do_lower_case": False, "strip_accents": True},
           "no_chinese_split": {"tokenize_chinese_chars": False}, "cased": {"do_lower_case": False}}


def tokenizer_folder(folder, vocab: dict, layout: str, **options):
    """``tokenizer.json`` + ``tokenizer_config.json`` as transformers 5 saves them, or the legacy
    ``vocab.txt`` + ``tokenizer_config.json``."""
    from transformers import BertTokenizer

    os.makedirs(folder, exist_ok=True)
    if layout == "tokenizer.json":
        BertTokenizer(vocab=dict(vocab), **options).save_pretrained(str(folder))
        assert not os.path.exists(os.path.join(folder, "vocab.txt"))
    else:
        tokens = sorted(vocab, key=vocab.get)
        with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(tokens) + "\n")
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump({**options, "tokenizer_class": "BertTokenizer"}, f)
    return str(folder)


@pytest.fixture(scope="module")
def texts():
    texts, pairs = corpus()
    return texts, pairs, trained_vocab(texts + pairs)


@pytest.mark.parametrize("layout", ["tokenizer.json", "vocab.txt"])
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_ids_equal_auto_tokenizer(texts, tmp_path, layout, option):
    from transformers import AutoTokenizer

    from rdrop_paddle.data.text import Tokenizer

    texts, pairs, vocab = texts
    folder = tokenizer_folder(tmp_path / "tok", vocab, layout, **OPTIONS[option])
    ref, tok = AutoTokenizer.from_pretrained(folder), Tokenizer.from_pretrained(folder)
    for second in (None, pairs):
        want = ref(texts, second, truncation=True, max_length=128, padding=True)
        got = tok(texts, second, max_length=128)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            mismatched = int((got[key] != np.asarray(want[key])).any(axis=1).sum())
            assert mismatched == 0, f"{key}: {mismatched} of {len(texts)} rows differ ({option}, {layout})"
    special = tok(["the [MASK] cat [SEP] [PAD]"], max_length=16)["input_ids"][0].tolist()
    assert special == ref("the [MASK] cat [SEP] [PAD]")["input_ids"]  # each typed special token stays one


def test_options_matter(texts, tmp_path):
    """The options really change ids on this corpus (so the comparison above can fail)."""
    from rdrop_paddle.data.text import Tokenizer

    texts, _, vocab = texts
    ids = {name: Tokenizer.from_pretrained(tokenizer_folder(tmp_path / name, vocab, "vocab.txt", **opts))(
        texts, max_length=128)["input_ids"] for name, opts in OPTIONS.items()}
    for name in ("lower_keep_accents", "cased_strip_accents", "no_chinese_split", "cased"):
        assert ids[name].shape != ids["uncased"].shape or (ids[name] != ids["uncased"]).any(), name


def _model_folder(folder, vocab, shard=None, safe=True, head=True, **config):
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=130, num_labels=3, initializer_range=0.2,
                     id2label={0: "negative", 1: "neutral", 2: "positive"}, **config)
    model = (BertForSequenceClassification if head else BertModel)(cfg).eval()
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(str(folder), safe_serialization=safe, **kwargs)
    tokenizer_folder(folder, vocab, "tokenizer.json")
    return model


@pytest.mark.parametrize("shard,safe", [(None, True), ("40KB", True), ("40KB", False)])
def test_logits_equal_transformers_for_every_weights_layout(texts, tmp_path, shard, safe):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rdrop_paddle.convert.text import convert_text_folder
    from rdrop_paddle.data.text import Tokenizer
    from rdrop_paddle.models import from_pretrained

    texts, pairs, vocab = texts
    _model_folder(tmp_path / "hf", vocab, shard, safe)
    names = os.listdir(tmp_path / "hf")
    if shard:
        assert any(n.endswith(".index.json") for n in names), names
    assert convert_text_folder(str(tmp_path / "hf"), str(tmp_path / "pd")) == []
    assert json.load(open(tmp_path / "pd" / "config.json"))["id2label"] == {"0": "negative", "1": "neutral",
                                                                          "2": "positive"}
    assert os.path.isfile(tmp_path / "pd" / "tokenizer.json")
    ref = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "hf")).eval()
    batch = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))(texts[:40], pairs[:40], truncation=True,
                                                                max_length=128, padding=True, return_tensors="pt")
    with torch.no_grad():
        want = ref(**batch).logits.numpy()
    model = from_pretrained(str(tmp_path / "pd"), 3)
    model.eval()
    ours = Tokenizer.from_pretrained(str(tmp_path / "pd"))(texts[:40], pairs[:40], max_length=128)
    got = model(**{k: paddle.to_tensor(v) for k, v in ours.items()}).numpy()
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_a_headless_checkpoint_names_the_keys_that_start_fresh(texts, tmp_path):
    _model_folder(tmp_path / "hf", texts[2], head=False)
    res = run_tool("tools/convert_weights.py", "--format", "hf", "--src", tmp_path / "hf", "--out", tmp_path / "pd")
    assert res.returncode == 0, res.stderr[-2000:]
    notices = [line for line in res.stdout.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and "classifier.bias, classifier.weight" in notices[0], res.stdout


def _shard_problem(folder, problem):
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    key, shard = next(iter(index["weight_map"].items()))
    if problem == "outside":
        index["weight_map"][key] = "../" + shard
    elif problem == "missing":
        os.remove(folder / shard)
    elif problem == "wrong_shape":
        import safetensors.numpy

        arrays = safetensors.numpy.load_file(str(folder / shard))
        first = sorted(k for k in arrays if k.endswith("word_embeddings.weight") or k in index["weight_map"])[0]
        arrays[first] = np.zeros((3, 3), np.float32)
        safetensors.numpy.save_file(arrays, str(folder / shard), metadata={"format": "pt"})
    index_path.write_text(json.dumps(index))


@pytest.mark.parametrize("problem,message", [
    ("bpe", "a BPE tokenizer, not the WordPiece"), ("outside", "is not a file name inside the folder"),
    ("missing", "is missing"), ("wrong_shape", "does not fit the model"), ("no_weights", "looked for model.safetensors")])
def test_layouts_that_cannot_be_read_are_one_line(texts, tmp_path, problem, message):
    folder = tmp_path / "hf"
    _model_folder(folder, texts[2], shard="40KB")
    if problem == "bpe":
        from tokenizers import Tokenizer, models

        Tokenizer(models.BPE()).save(str(folder / "tokenizer.json"))
    elif problem == "no_weights":
        for name in os.listdir(folder):
            if "safetensors" in name:
                os.remove(folder / name)
    else:
        _shard_problem(folder, problem)
    res = run_tool("tools/convert_weights.py", "--format", "hf", "--src", folder, "--out", tmp_path / "pd")
    assert message in one_error_line(res) and not os.path.exists(tmp_path / "pd")
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_a_run_exports_and_predicts_with_the_source_tokenizer(texts, tmp_path):
    """A tokenizer.json-only folder through convert, train, export and infer: the exported
    folder keeps tokenizer.json, and infer tokenises as AutoTokenizer does."""
    from tests.text_reference import text_folder

    _model_folder(tmp_path / "hf", texts[2])
    res = run_tool("tools/convert_weights.py", "--format", "hf", "--src", tmp_path / "hf", "--out", tmp_path / "pd")
    assert res.returncode == 0, res.stderr[-2000:]
    data = text_folder(tmp_path / "data", train=["the movie is good\tpos", "the cat is bad\tneg"] * 8,
                       labels=("neg", "pos"))
    common = ["-c", "configs/text_demo.yaml", "-o", f"Model.pretrained={tmp_path / 'pd'}", "-o", f"Data.root={data}",
              "-o", f"Global.output_dir={tmp_path / 'run'}", "-o", "Global.max_steps=2", "-o", "Data.batch_size=4"]
    assert run_tool("tools/train.py", *common).returncode == 0
    out = tmp_path / "exported"
    res = run_tool("tools/export_model.py", *common[:-4], "-o", f"Global.output_dir={tmp_path / 'run'}",
                   "--out", out)
    assert res.returncode == 0, res.stderr[-2000:]
    assert os.path.isfile(out / "tokenizer.json") and not os.path.exists(out / "vocab.txt")
    res = run_tool("tools/infer.py", "--model-dir", out, "--text", "the [MASK] movie", "--out", tmp_path / "p.json")
    assert res.returncode == 0, res.stderr[-2000:]


def test_training_batches_are_padded_on_the_side_inference_pads(texts, tmp_path):
    """A tokenizer_config.json with ``padding_side: left``: AutoTokenizer pads left, and so do both
    the tokenizer (inference) and the training data set's batches."""
    import json as _json

    from transformers import AutoTokenizer

    from rdrop_paddle.data.text import Tokenizer
    from rdrop_paddle.data.text.dataset import build_text_datasets
    from tests.text_reference import text_folder

    folder = tokenizer_folder(tmp_path / "tok", texts[2], "vocab.txt")
    config = _json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())
    (tmp_path / "tok" / "tokenizer_config.json").write_text(_json.dumps({**config, "padding_side": "left"}))
    ref, tok = AutoTokenizer.from_pretrained(folder), Tokenizer.from_pretrained(folder)
    sample = ["the cat", "the movie is not good"]
    want = ref(sample, padding=True)["input_ids"]
    assert want[0][0] == ref.pad_token_id  # left
    np.testing.assert_array_equal(tok(sample, max_length=32)["input_ids"], np.asarray(want))
    data = text_folder(tmp_path / "data", train=[f"{t}\tpos" for t in sample])
    train, _ = build_text_datasets("text_folder", data, "", tok, 32)
    batch, _ = train.collate([train[0], train[1]])
    np.testing.assert_array_equal(batch["input_ids"], np.asarray(want))
