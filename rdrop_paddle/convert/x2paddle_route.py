"""The x2paddle route: trace a PyTorch ViT with ``x2paddle.convert.pytorch2paddle``.

The checkpoint (any supported format) is loaded into the reference PyTorch module,
HF transformers' ``ViTForImageClassification``; x2paddle traces it and writes Paddle
code plus ``model.pdparams`` whose names are flattened (``m_vit_layers_0_attention_q_proj_weight``)
or generic (``conv2d0``, ``layernorm{k}`` in trace order).  Those are mapped back to HF
names here, so the result feeds the same converter as the direct route.  x2paddle is
always called with ``disable_feedback=True``: it sends nothing over the network.
"""
from __future__ import annotations

import contextlib
import io
import re
import tempfile

import numpy as np

from rdrop_paddle.convert.formats import to_canonical
from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import load_paddle

_DIRECT = "use the direct route instead: --format auto"


def canonical_to_hf(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical (timm) layout -> transformers >= 5 ``ViTForImageClassification`` names."""
    out = {"vit.embeddings.cls_token": state["cls_token"],
           "vit.embeddings.position_embeddings": state["pos_embed"],
           "vit.embeddings.patch_embeddings.projection.weight": state["patch_embed.proj.weight"],
           "vit.embeddings.patch_embeddings.projection.bias": state["patch_embed.proj.bias"],
           "vit.layernorm.weight": state["norm.weight"], "vit.layernorm.bias": state["norm.bias"],
           "classifier.weight": state["head.weight"], "classifier.bias": state["head.bias"]}
    names = {"attn.proj": "attention.o_proj", "norm1": "layernorm_before",
             "norm2": "layernorm_after", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
    for key, value in state.items():
        m = re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", key)
        if not m:
            continue
        block, name, kind = m.groups()
        if name == "attn.qkv":
            for part, chunk in zip("qkv", np.split(value, 3, axis=0)):
                out[f"vit.layers.{block}.attention.{part}_proj.{kind}"] = chunk
        else:
            out[f"vit.layers.{block}.{names[name]}.{kind}"] = value
    return out


def _hf_module(hf: dict[str, np.ndarray], num_heads: int):
    import torch
    from transformers import ViTForImageClassification

    from rdrop_paddle.convert.hf import vit_config

    conv = hf["vit.embeddings.patch_embeddings.projection.weight"]
    dim, chans, patch = conv.shape[0], conv.shape[1], conv.shape[2]
    grid = int(round((hf["vit.embeddings.position_embeddings"].shape[1] - 1) ** 0.5))
    layers = len({k.split(".")[2] for k in hf if k.startswith("vit.layers.")})
    cfg = vit_config(dim, layers, num_heads, grid * patch, patch, hf["classifier.weight"].shape[0],
                     chans, mlp=hf["vit.layers.0.mlp.fc1.weight"].shape[0])
    model = ViTForImageClassification(cfg).eval()
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in hf.items()})

    class Logits(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.m = net

        def forward(self, x):
            return self.m(pixel_values=x).logits

    return Logits(model).eval(), (1, chans, grid * patch, grid * patch)


def map_x2paddle_names(params: dict[str, np.ndarray], hf_keys) -> dict[str, np.ndarray]:
    """x2paddle's generated parameter names -> HF names (torch layout kept as traced)."""
    flat = {"m_" + k.replace(".", "_"): k for k in hf_keys}
    layers = len({k.split(".")[2] for k in hf_keys if k.startswith("vit.layers.")})
    norms = [f"vit.layers.{i}.{n}" for i in range(layers) for n in ("layernorm_before", "layernorm_after")]
    norms.append("vit.layernorm")
    out, unknown = {}, []
    for name, value in params.items():
        if name in flat:
            out[flat[name]] = value
        elif m := re.fullmatch(r"conv2d0\.(weight|bias)", name):
            out[f"vit.embeddings.patch_embeddings.projection.{m.group(1)}"] = value
        elif (m := re.fullmatch(r"layernorm(\d+)\.(weight|bias)", name)) and int(m.group(1)) < len(norms):
            out[f"{norms[int(m.group(1))]}.{m.group(2)}"] = value
        else:
            unknown.append(name)
    if unknown:
        raise UserInputError(f"x2paddle produced parameters this mapping does not know: "
                             f"{', '.join(unknown[:8])}; {_DIRECT}")
    return out


def x2paddle_state_dict(source: dict[str, np.ndarray], fmt: str, num_heads: int) -> dict[str, np.ndarray]:
    """Trace the checkpoint's PyTorch ViT with x2paddle; return its parameters under HF names."""
    try:
        import torch
        from x2paddle.convert import pytorch2paddle
    except ImportError as e:
        raise UserInputError(f"--format x2paddle needs torch, transformers and x2paddle "
                             f"({e.name} is missing); {_DIRECT}") from None
    hf = canonical_to_hf(to_canonical(source, fmt))
    module, shape = _hf_module(hf, num_heads)
    example = torch.from_numpy(np.random.RandomState(0).randn(*shape).astype(np.float32))
    with tempfile.TemporaryDirectory() as save_dir:
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                pytorch2paddle(module, save_dir=save_dir, jit_type="trace",
                               input_examples=[example], disable_feedback=True)
        except Exception as e:
            ops = re.findall(r"=+ (\w+::\w+) =+", printed.getvalue())
            what = f"unsupported op(s) {', '.join(ops)}" if ops else f"{type(e).__name__}: {e}"
            raise UserInputError(f"x2paddle cannot trace this model ({what}); {_DIRECT}") from None
        params = load_paddle(f"{save_dir}/model.pdparams")
    return map_x2paddle_names({k: np.asarray(v) for k, v in params.items()}, hf.keys())
