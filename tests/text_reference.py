"""Genuine Hugging Face BERT / ERNIE folders, written by transformers (the reference), and
small labelled text files in the layouts PaddleNLP, GLUE and CLUE ship."""
import json
import os

import numpy as np

VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz")
         + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
         + ["the", "cat", "dog", "movie", "good", "bad", "not", "is", "##s", "##ing", "好", "天", "气", "é", ",", ".", "!",
            "Cat", "The"])


def hf_model(kind: str, out, classes: int = 3, safetensors: bool = True, seed: int = 0, **config):
    """Save a randomly initialised ``{Bert,Ernie}ForSequenceClassification`` with
    ``save_pretrained`` (weights of std 0.2, so logits are not all near zero) and a vocab."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, ErnieConfig, ErnieForSequenceClassification

    torch.manual_seed(seed)
    kw = {**dict(vocab_size=len(VOCAB) + 7, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=48, max_position_embeddings=40, num_labels=classes, initializer_range=0.2),
          **config}
    model = (BertForSequenceClassification(BertConfig(**kw)) if kind == "bert" else
             ErnieForSequenceClassification(ErnieConfig(use_task_id=True, task_type_vocab_size=3, **kw)))
    model.eval()
    model.save_pretrained(str(out), safe_serialization=safetensors)
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")
    return model


def batch(n: int = 4, length: int = 11, vocab: int = len(VOCAB), seed: int = 0) -> dict:
    """Random ids with padding on some rows, two segments."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, (n, length))
    ids[:, 0] = 2
    types = (np.arange(length)[None, :] >= rng.integers(2, length, (n, 1))).astype(np.int64)
    mask = np.ones((n, length), np.int64)
    for row in range(1, n, 2):
        cut = int(rng.integers(3, length))
        mask[row, cut:], ids[row, cut:], types[row, cut:] = 0, 0, 0
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def write_lines(path, lines, encoding="utf-8"):
    with open(path, "wb") as f:
        f.write("".join(line + "\n" for line in lines).encode(encoding) if isinstance(lines[0], str)
                else b"".join(line + b"\n" for line in lines))


def text_folder(root, train=None, dev=None, labels=("neg", "pos")):
    """PaddleNLP's layout: train.txt / dev.txt of text<TAB>label, label.txt."""
    os.makedirs(root, exist_ok=True)
    write_lines(os.path.join(root, "label.txt"), list(labels))
    write_lines(os.path.join(root, "train.txt"), train or ["the movie is good\tpos", "the cat is bad\tneg"] * 4)
    write_lines(os.path.join(root, "dev.txt"), dev or ["the dog is good\tpos", "not good\tneg"])
    return str(root)


def clue_tnews(root):
    os.makedirs(root, exist_ok=True)
    labels = [{"label": "100", "label_desc": "news_story"}, {"label": "101", "label_desc": "news_culture"}]
    rows = [{"label": "101", "label_desc": "news_culture", "sentence": "好天气", "keywords": ""},
            {"label": "100", "label_desc": "news_story", "sentence": "the cat", "keywords": "cat"}]
    for name, data in (("labels.json", labels), ("train.json", rows * 3), ("dev.json", rows)):
        write_lines(os.path.join(root, name), [json.dumps(r, ensure_ascii=False) for r in data])
    return str(root)
