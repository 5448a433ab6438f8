"""The weights of a Hugging Face folder in any layout ``save_pretrained`` writes: one
``model.safetensors`` or ``pytorch_model.bin``, or shards listed by
``model.safetensors.index.json`` / ``pytorch_model.bin.index.json`` (every BERT-large on the
Hub).  Each shard must be a regular file inside the folder; the index and the shards must
agree key for key.  Files are read by the package's own parsers (no code runs)."""
from __future__ import annotations

import os

import numpy as np

from rdrop_paddle.convert.readers import load_checkpoint
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import read_json

# in transformers' order of preference: safetensors before pickles, one file before shards
LAYOUTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
           "model.pdparams")
MAX_SHARDS = 10_000


def weights_layout(src: str) -> str:
    """The path of the weights file or index of folder ``src``; none is one error naming all."""
    for name in LAYOUTS:
        if os.path.isfile(os.path.join(src, name)):
            return os.path.join(src, name)
    raise UserInputError(f"{src}: no weights: looked for {', '.join(LAYOUTS)}")


def _shards(index_path: str) -> dict[str, list[str]]:
    """``{shard path: [keys]}`` of an index file, every shard a plain file name inside its folder."""
    index = read_json(index_path, 64 << 20)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise UserInputError(f"{index_path}: no weight_map; not a sharded-weights index")
    folder, shards = os.path.dirname(index_path), {}
    for key, name in weight_map.items():
        if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
            raise UserInputError(f"{index_path}: shard {str(name)[:80]!r} of {key[:80]} is not a file name inside the folder")
        shards.setdefault(os.path.join(folder, name), []).append(key)
    if len(shards) > MAX_SHARDS:
        raise UserInputError(f"{index_path}: lists more than {MAX_SHARDS:,} shards")
    real = os.path.realpath(folder)
    for path in shards:
        if not os.path.isfile(path):
            raise UserInputError(f"{index_path}: shard {os.path.basename(path)} is missing (or not a regular file)")
        if os.path.dirname(os.path.realpath(path)) != real:
            raise UserInputError(f"{index_path}: shard {os.path.basename(path)} links outside {folder}")
    return shards


def read_hf_weights(src: str) -> tuple[str, dict[str, np.ndarray]]:
    """``(what was read, {key: array})`` of folder ``src`` in its dtypes."""
    path = weights_layout(src)
    if not path.endswith(".index.json"):
        return path, load_checkpoint(path)
    state: dict[str, np.ndarray] = {}
    for shard, keys in _shards(path).items():
        arrays = load_checkpoint(shard)
        missing = [k for k in keys if k not in arrays]
        if missing:
            raise UserInputError(f"{shard}: has no {missing[0]}, which {os.path.basename(path)} places there")
        state.update({k: arrays[k] for k in keys})
    return path, state
