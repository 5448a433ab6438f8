"""Write a text-classification demo, offline: ``python tools/make_demo_text.py --out DIR``.

No labelled text set ships inside a package on PyPI that installs offline, so the demo is
generated (seeded, the same on every machine):

    DIR/data/train.txt dev.txt test.txt label.txt    PaddleNLP's folder (Data.name: text_folder)
    DIR/bert_tiny_hf/                                a Hugging Face BERT folder: config.json,
        model.safetensors, vocab.txt, tokenizer_config.json (2 layers of width 64, random weights)

Reviews of three classes (``positive``, ``negative``, ``neutral``), where a negation flips
the polarity ("not good" is negative), so that word counts alone do not solve it; 5% of the
training labels are wrong (``NOISE``), as in real annotations.  Convert
the model as any Hugging Face checkpoint: ``tools/convert_weights.py --format hf``.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import make_folder

LABELS = ("positive", "negative", "neutral")
NOISE = 0.05  # share of training labels replaced by another class
_SUBJECTS = ("the movie", "this film", "the plot", "the acting", "the music", "the ending", "the cast", "the story",
             "the camera work", "the script", "the dialogue", "the pacing")
_GOOD = ("good", "great", "wonderful", "moving", "brilliant", "funny", "charming", "clever", "beautiful", "fresh")
_BAD = ("bad", "boring", "dull", "awful", "weak", "silly", "clumsy", "tedious", "flat", "messy")
_PLAIN = ("long", "short", "in english", "in colour", "released in may", "about a family", "set in a city",
          "two hours long", "based on a book", "shot in winter")
_FILLERS = ("", "honestly", "i think", "overall", "to be fair", "in the end", "for me", "as expected")
_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY_BERT = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": 0,
             "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256,
             "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
             "max_position_embeddings": 128, "type_vocab_size": 2, "initializer_range": 0.02,
             "layer_norm_eps": 1e-12, "pad_token_id": 0}


def review(rng: np.random.Generator) -> tuple[str, str]:
    """One review and its label."""
    subject, filler = _SUBJECTS[rng.integers(len(_SUBJECTS))], _FILLERS[rng.integers(len(_FILLERS))]
    kind = LABELS[rng.integers(3)]
    if kind == "neutral":
        words = [subject, "is", _PLAIN[rng.integers(len(_PLAIN))]]
    else:
        negate = bool(rng.integers(2))
        pool = _GOOD if (kind == "positive") != negate else _BAD
        words = [subject, "is" + (" not" if negate else ""), pool[rng.integers(len(pool))]]
    return " ".join(w for w in [filler, *words] if w) + rng.choice([".", "!", " ."]), kind


def vocabulary() -> list[str]:
    words = {w for phrase in (*_SUBJECTS, *_GOOD, *_BAD, *_PLAIN, *_FILLERS, "is not") for w in phrase.split()}
    return _SPECIALS + sorted(words) + [".", "!", ","] + [chr(c) for c in range(ord("a"), ord("z") + 1)]


def write_safetensors(state: dict[str, np.ndarray], path: str) -> None:
    """A ``.safetensors`` file: 8-byte little-endian header length, JSON header, raw data."""
    header, offset = {}, 0
    for key, value in state.items():
        header[key] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [offset, offset + value.nbytes]}
        offset += value.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for value in state.values():
            f.write(np.ascontiguousarray(value, dtype="<f4").tobytes())


def tiny_bert_weights(config: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """transformers-named weights of a randomly initialised BERT encoder (its ``_init_weights``:
    normal(0, initializer_range) matrices and embeddings, zero biases, unit LayerNorm)."""
    import paddle

    from rdrop_paddle.models.bert import TextClassifier
    from rdrop_paddle.models.bert_config import parse_config

    with paddle.LazyGuard():
        shapes = {k: tuple(v.shape) for k, v in TextClassifier(parse_config(config, "demo"), 2).state_dict().items()
                  if not k.startswith("classifier.")}
    state = {}
    for key, shape in shapes.items():
        if key.endswith("LayerNorm.weight"):
            state[key] = np.ones(shape, np.float32)
        elif len(shape) == 1:
            state[key] = np.zeros(shape, np.float32)
        else:  # Paddle Linear weights are [in, out]; transformers stores [out, in]
            value = rng.normal(0.0, config["initializer_range"], shape).astype(np.float32)
            state[key] = value if "_embeddings." in key else np.ascontiguousarray(value.T)
    return state


def write_tiny_bert(folder: str, rng: np.random.Generator | None = None) -> dict:
    """Write a Hugging Face folder of a randomly initialised tiny BERT (:data:`TINY_BERT`) with the
    demo's vocabulary into ``folder`` (created); returns its config."""
    rng = rng if rng is not None else np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    vocab = vocabulary()
    config = {**TINY_BERT, "vocab_size": len(vocab)}
    write_safetensors(tiny_bert_weights(config, rng), os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}, f)
    return config


def run(args) -> None:
    if os.path.islink(args.out) or (os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out))):
        raise UserInputError(f"--out {args.out} exists and is not an empty folder; choose a new one")
    if not 30 <= args.train <= 1_000_000:
        raise UserInputError(f"--train must be in [30, 1000000], got {args.train}")
    make_folder(args.out, "--out")
    rng = np.random.default_rng(0)
    data, model = os.path.join(args.out, "data"), os.path.join(args.out, "bert_tiny_hf")
    os.makedirs(data, exist_ok=True)
    for name, n in (("train.txt", args.train), ("dev.txt", max(30, args.train // 4)), ("test.txt", 30)):
        rows = [review(rng) for _ in range(n)]
        if name == "train.txt":
            flip = rng.random(n) < NOISE
            rows = [(t, LABELS[(LABELS.index(y) + 1 + rng.integers(2)) % 3] if f else y)
                    for (t, y), f in zip(rows, flip)]
        with open(os.path.join(data, name), "w", encoding="utf-8") as f:
            f.writelines(f"{text}\t{label}\n" if name != "test.txt" else f"{text}\n" for text, label in rows)
    with open(os.path.join(data, "label.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(LABELS) + "\n")
    config = write_tiny_bert(model, rng)
    print(f"wrote {data} ({args.train} training reviews, classes {', '.join(LABELS)}) and {model} "
          f"(a {config['num_hidden_layers']}-layer BERT of width {config['hidden_size']}, random weights)")
