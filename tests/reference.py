"""Genuine checkpoint layouts built from an HF transformers ViT (the reference model itself
lives in ``rdrop_paddle.alignment.reference``).

The writers below turn an HF ViT's weights into the files people actually have: Google's
``.npz`` (JAX kernels), the official R-Drop/jeonsworld ``.bin``, timm, HF (both key
generations) and PaddleClas
(``ppcls/arch/backbone/model_zoo/vision_transformer.py``).  Each follows the published layout of that format, independently of the
package's converters, which the tests then run on these files.
"""
import numpy as np


def _layer(s, i, name):
    return s[f"vit.layers.{i}.{name}"]


def layers_of(s):
    return len({k.split(".")[2] for k in s if k.startswith("vit.layers.")})


def to_hf_classic(s):
    """The hub's classic names (``vit.encoder.layer.{i}.attention.attention.query``)."""
    ren = {"attention.q_proj": "attention.attention.query", "attention.k_proj": "attention.attention.key",
           "attention.v_proj": "attention.attention.value", "attention.o_proj": "attention.output.dense",
           "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
    out = {}
    for k, v in s.items():
        if k.startswith("vit.layers."):
            _, _, i, rest = k.split(".", 3)
            for a, b in ren.items():
                rest = rest.replace(a, b)
            k = f"vit.encoder.layer.{i}.{rest}"
        out[k] = v
    return out


def to_timm(s):
    out = {"cls_token": s["vit.embeddings.cls_token"], "pos_embed": s["vit.embeddings.position_embeddings"],
           "patch_embed.proj.weight": s["vit.embeddings.patch_embeddings.projection.weight"],
           "patch_embed.proj.bias": s["vit.embeddings.patch_embeddings.projection.bias"],
           "norm.weight": s["vit.layernorm.weight"], "norm.bias": s["vit.layernorm.bias"],
           "head.weight": s["classifier.weight"], "head.bias": s["classifier.bias"]}
    for i in range(layers_of(s)):
        for kind in ("weight", "bias"):
            out[f"blocks.{i}.attn.qkv.{kind}"] = np.concatenate(
                [_layer(s, i, f"attention.{n}_proj.{kind}") for n in "qkv"])
            for src, dst in (("attention.o_proj", "attn.proj"), ("layernorm_before", "norm1"),
                             ("layernorm_after", "norm2"), ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")):
                out[f"blocks.{i}.{dst}.{kind}"] = _layer(s, i, f"{src}.{kind}")
    return out


def to_paddleclas(s):
    """PaddleClas ``ViT_*`` state dict names (timm's), Linear weights in Paddle's [in, out]."""
    linear = ("attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight")
    return {k: (np.ascontiguousarray(v.T) if k.endswith(linear) or k == "head.weight" else v)
            for k, v in to_timm(s).items()}


def to_rdrop(s):
    """dropreg/R-Drop vit_src (jeonsworld ViT-pytorch) ``state_dict`` names."""
    out = {"transformer.embeddings.cls_token": s["vit.embeddings.cls_token"],
           "transformer.embeddings.position_embeddings": s["vit.embeddings.position_embeddings"],
           "transformer.embeddings.patch_embeddings.weight": s["vit.embeddings.patch_embeddings.projection.weight"],
           "transformer.embeddings.patch_embeddings.bias": s["vit.embeddings.patch_embeddings.projection.bias"],
           "transformer.encoder.encoder_norm.weight": s["vit.layernorm.weight"],
           "transformer.encoder.encoder_norm.bias": s["vit.layernorm.bias"],
           "head.weight": s["classifier.weight"], "head.bias": s["classifier.bias"]}
    for i in range(layers_of(s)):
        pre = f"transformer.encoder.layer.{i}."
        for kind in ("weight", "bias"):
            for src, dst in (("attention.q_proj", "attn.query"), ("attention.k_proj", "attn.key"),
                             ("attention.v_proj", "attn.value"), ("attention.o_proj", "attn.out"),
                             ("layernorm_before", "attention_norm"), ("layernorm_after", "ffn_norm"),
                             ("mlp.fc1", "ffn.fc1"), ("mlp.fc2", "ffn.fc2")):
                out[f"{pre}{dst}.{kind}"] = _layer(s, i, f"{src}.{kind}")
    return out


def to_google_npz(s, heads, pre_logits=False):
    """Google's ViT ``.npz``: HWIO conv kernel, [in, out] dense kernels, per-head q/k/v/out."""
    d = s["vit.layernorm.weight"].shape[0]
    hd = d // heads
    out = {"embedding/kernel": s["vit.embeddings.patch_embeddings.projection.weight"].transpose(2, 3, 1, 0),
           "embedding/bias": s["vit.embeddings.patch_embeddings.projection.bias"],
           "cls": s["vit.embeddings.cls_token"],
           "Transformer/posembed_input/pos_embedding": s["vit.embeddings.position_embeddings"],
           "Transformer/encoder_norm/scale": s["vit.layernorm.weight"],
           "Transformer/encoder_norm/bias": s["vit.layernorm.bias"],
           "head/kernel": s["classifier.weight"].T, "head/bias": s["classifier.bias"]}
    if pre_logits:
        out["pre_logits/kernel"] = np.eye(d, dtype=np.float32)
        out["pre_logits/bias"] = np.zeros(d, dtype=np.float32)
    for i in range(layers_of(s)):
        pre = f"Transformer/encoderblock_{i}/"
        att = pre + "MultiHeadDotProductAttention_1/"
        for n, name in (("q", "query"), ("k", "key"), ("v", "value")):
            out[f"{att}{name}/kernel"] = _layer(s, i, f"attention.{n}_proj.weight").T.reshape(d, heads, hd)
            out[f"{att}{name}/bias"] = _layer(s, i, f"attention.{n}_proj.bias").reshape(heads, hd)
        out[f"{att}out/kernel"] = _layer(s, i, "attention.o_proj.weight").T.reshape(heads, hd, d)
        out[f"{att}out/bias"] = _layer(s, i, "attention.o_proj.bias")
        for ln, src in (("LayerNorm_0", "layernorm_before"), ("LayerNorm_2", "layernorm_after")):
            out[f"{pre}{ln}/scale"] = _layer(s, i, f"{src}.weight")
            out[f"{pre}{ln}/bias"] = _layer(s, i, f"{src}.bias")
        for dense, src in (("Dense_0", "mlp.fc1"), ("Dense_1", "mlp.fc2")):
            out[f"{pre}MlpBlock_3/{dense}/kernel"] = _layer(s, i, f"{src}.weight").T
            out[f"{pre}MlpBlock_3/{dense}/bias"] = _layer(s, i, f"{src}.bias")
    return {k: np.ascontiguousarray(v) for k, v in out.items()}
