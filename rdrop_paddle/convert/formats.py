"""Source checkpoint layouts -> one canonical layout (timm's names, PyTorch orientation).

Each format is a list of ``(regex, replacement, transform)`` rules applied to every
source key; a key that no rule matches is reported as unexpected.  Separate q/k/v
projections are renamed to ``blocks.{i}.attn.{q,k,v}.*`` and fused afterwards.
Canonical Linear weights are ``[out, in]``; the Paddle layout is made from it in
:mod:`rdrop_paddle.convert.convert`.
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np

from rdrop_paddle.errors import UserInputError

Array = np.ndarray


def _t(a: Array) -> Array:  # [in, out] -> [out, in]
    return np.ascontiguousarray(a.T)


def _hwio(a: Array) -> Array:  # conv kernel [kh, kw, in, out] -> [out, in, kh, kw]
    return np.ascontiguousarray(a.transpose(3, 2, 0, 1))


def _heads_in(a: Array) -> Array:  # [D, heads, head_dim] -> [heads*head_dim, D]
    return np.ascontiguousarray(a.reshape(a.shape[0], -1).T)


def _heads_out(a: Array) -> Array:  # [heads, head_dim, D] -> [D, heads*head_dim]
    return np.ascontiguousarray(a.reshape(-1, a.shape[-1]).T)


def _flat(a: Array) -> Array:
    return a.reshape(-1)


def _same(a: Array) -> Array:
    return a


Rule = tuple[str, str, Callable[[Array], Array]]
_B = r"(\d+)"

NPZ: list[Rule] = [
    (r"embedding/kernel", "patch_embed.proj.weight", _hwio),
    (r"embedding/bias", "patch_embed.proj.bias", _same),
    (r"cls", "cls_token", _same),
    (r"Transformer/posembed_input/pos_embedding", "pos_embed", _same),
    (rf"Transformer/encoderblock_{_B}/LayerNorm_0/scale", r"blocks.\1.norm1.weight", _same),
    (rf"Transformer/encoderblock_{_B}/LayerNorm_0/bias", r"blocks.\1.norm1.bias", _same),
    (rf"Transformer/encoderblock_{_B}/LayerNorm_2/scale", r"blocks.\1.norm2.weight", _same),
    (rf"Transformer/encoderblock_{_B}/LayerNorm_2/bias", r"blocks.\1.norm2.bias", _same),
    (rf"Transformer/encoderblock_{_B}/MultiHeadDotProductAttention_1/(query|key|value)/kernel",
     r"blocks.\1.attn.\2.weight", _heads_in),
    (rf"Transformer/encoderblock_{_B}/MultiHeadDotProductAttention_1/(query|key|value)/bias",
     r"blocks.\1.attn.\2.bias", _flat),
    (rf"Transformer/encoderblock_{_B}/MultiHeadDotProductAttention_1/out/kernel",
     r"blocks.\1.attn.proj.weight", _heads_out),
    (rf"Transformer/encoderblock_{_B}/MultiHeadDotProductAttention_1/out/bias",
     r"blocks.\1.attn.proj.bias", _same),
    (rf"Transformer/encoderblock_{_B}/MlpBlock_3/Dense_0/kernel", r"blocks.\1.mlp.fc1.weight", _t),
    (rf"Transformer/encoderblock_{_B}/MlpBlock_3/Dense_0/bias", r"blocks.\1.mlp.fc1.bias", _same),
    (rf"Transformer/encoderblock_{_B}/MlpBlock_3/Dense_1/kernel", r"blocks.\1.mlp.fc2.weight", _t),
    (rf"Transformer/encoderblock_{_B}/MlpBlock_3/Dense_1/bias", r"blocks.\1.mlp.fc2.bias", _same),
    (r"Transformer/encoder_norm/scale", "norm.weight", _same),
    (r"Transformer/encoder_norm/bias", "norm.bias", _same),
    (r"head/kernel", "head.weight", _t),
    (r"head/bias", "head.bias", _same),
    (r"pre_logits/kernel", "pre_logits.fc.weight", _t),
    (r"pre_logits/bias", "pre_logits.fc.bias", _same),
]

_ENC = rf"transformer\.encoder\.layer\.{_B}\."
RDROP: list[Rule] = [  # dropreg/R-Drop vit_src = jeonsworld/ViT-pytorch
    (r"transformer\.embeddings\.patch_embeddings\.(weight|bias)", r"patch_embed.proj.\1", _same),
    (r"transformer\.embeddings\.position_embeddings", "pos_embed", _same),
    (r"transformer\.embeddings\.cls_token", "cls_token", _same),
    (_ENC + r"attention_norm\.(weight|bias)", r"blocks.\1.norm1.\2", _same),
    (_ENC + r"ffn_norm\.(weight|bias)", r"blocks.\1.norm2.\2", _same),
    (_ENC + r"ffn\.(fc1|fc2)\.(weight|bias)", r"blocks.\1.mlp.\2.\3", _same),
    (_ENC + r"attn\.(query|key|value)\.(weight|bias)", r"blocks.\1.attn.\2.\3", _same),
    (_ENC + r"attn\.out\.(weight|bias)", r"blocks.\1.attn.proj.\2", _same),
    (r"transformer\.encoder\.encoder_norm\.(weight|bias)", r"norm.\1", _same),
    (r"head\.(weight|bias)", r"head.\1", _same),
]

_HF_CLASSIC = rf"vit\.encoder\.layer\.{_B}\."
_HF_V5 = rf"vit\.layers\.{_B}\."
HF: list[Rule] = [  # transformers ViTForImageClassification, classic and >= 5 names
    (r"vit\.embeddings\.cls_token", "cls_token", _same),
    (r"vit\.embeddings\.position_embeddings", "pos_embed", _same),
    (r"vit\.embeddings\.patch_embeddings\.projection\.(weight|bias)", r"patch_embed.proj.\1", _same),
    (_HF_CLASSIC + r"attention\.attention\.(query|key|value)\.(weight|bias)",
     r"blocks.\1.attn.\2.\3", _same),
    (_HF_CLASSIC + r"attention\.output\.dense\.(weight|bias)", r"blocks.\1.attn.proj.\2", _same),
    (_HF_CLASSIC + r"intermediate\.dense\.(weight|bias)", r"blocks.\1.mlp.fc1.\2", _same),
    (_HF_CLASSIC + r"output\.dense\.(weight|bias)", r"blocks.\1.mlp.fc2.\2", _same),
    (_HF_V5 + r"attention\.(q|k|v)_proj\.(weight|bias)", r"blocks.\1.attn.\2.\3", _same),
    (_HF_V5 + r"attention\.o_proj\.(weight|bias)", r"blocks.\1.attn.proj.\2", _same),
    (_HF_V5 + r"mlp\.(fc1|fc2)\.(weight|bias)", r"blocks.\1.mlp.\2.\3", _same),
    (rf"vit\.(?:encoder\.layer|layers)\.{_B}\.layernorm_before\.(weight|bias)",
     r"blocks.\1.norm1.\2", _same),
    (rf"vit\.(?:encoder\.layer|layers)\.{_B}\.layernorm_after\.(weight|bias)",
     r"blocks.\1.norm2.\2", _same),
    (r"vit\.layernorm\.(weight|bias)", r"norm.\1", _same),
    (r"classifier\.(weight|bias)", r"head.\1", _same),
]

TIMM: list[Rule] = [
    (r"(cls_token|pos_embed)", r"\1", _same),
    (r"(patch_embed\.proj|norm|head|pre_logits\.fc)\.(weight|bias)", r"\1.\2", _same),
    (rf"blocks\.{_B}\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)",
     r"blocks.\1.\2.\3", _same),
]

PADDLECLAS: list[Rule] = [  # PaddleClas ViT_*: timm's names, Paddle's [in, out] Linear weights
    (rf"(blocks\.{_B}\.(?:attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)|head)\.weight", r"\1.weight", _t),
    *TIMM,
]

FORMATS: dict[str, list[Rule]] = {"npz": NPZ, "rdrop": RDROP, "hf": HF, "timm": TIMM,
                                  "paddleclas": PADDLECLAS}
_QKV_ALIASES = {"query": "q", "key": "k", "value": "v"}


def detect_format(keys, path: str = "") -> str:
    """Name the format whose distinctive keys appear in ``keys`` (a ``.pdparams`` file with
    timm's names is PaddleClas: same names, Paddle's layout)."""
    keys = set(keys)
    probes = {"npz": "Transformer/encoder_norm/scale", "rdrop": "transformer.embeddings.cls_token",
              "hf": "vit.embeddings.cls_token", "timm": "cls_token"}
    for fmt, probe in probes.items():
        if probe in keys:
            return "paddleclas" if fmt == "timm" and path.lower().endswith(".pdparams") else fmt
    sample = ", ".join(sorted(keys)[:5])
    raise UserInputError(f"cannot tell the checkpoint format from its keys ({sample}, ...); "
                         f"pass --format one of {', '.join(FORMATS)}")


def to_canonical(state: dict[str, Array], fmt: str) -> dict[str, Array]:
    """Rename and reshape a source state dict into the canonical (timm, PyTorch) layout."""
    if fmt not in FORMATS:
        raise UserInputError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    rules = [(re.compile(p), r, f) for p, r, f in FORMATS[fmt]]
    out, unexpected = {}, []
    for key, value in state.items():
        for pattern, repl, fn in rules:
            if pattern.fullmatch(key):
                out[pattern.sub(repl, key)] = fn(np.asarray(value))
                break
        else:
            unexpected.append(f"{key} {list(np.shape(value))}")
    if unexpected:
        raise UserInputError(f"unexpected keys for format {fmt}: " + ", ".join(unexpected[:10])
                             + (f" (+{len(unexpected) - 10} more)" if len(unexpected) > 10 else ""))
    return _fuse_qkv(out)


def _fuse_qkv(state: dict[str, Array]) -> dict[str, Array]:
    """Concatenate ``attn.{q,k,v}`` into timm's fused ``attn.qkv`` (q, k, v order)."""
    pat = re.compile(r"blocks\.(\d+)\.attn\.(q|k|v|query|key|value)\.(weight|bias)")
    parts: dict[tuple[str, str], dict[str, Array]] = {}
    out = {}
    for key, value in state.items():
        m = pat.fullmatch(key)
        if m:
            parts.setdefault((m.group(1), m.group(3)), {})[_QKV_ALIASES.get(m.group(2), m.group(2))] = value
        else:
            out[key] = value
    for (block, kind), qkv in sorted(parts.items()):
        missing = [n for n in "qkv" if n not in qkv]
        if missing:
            raise UserInputError(f"block {block} lacks attention {kind} for {', '.join(missing)}")
        out[f"blocks.{block}.attn.qkv.{kind}"] = np.concatenate([qkv["q"], qkv["k"], qkv["v"]], axis=0)
    return out
