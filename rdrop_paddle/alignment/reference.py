"""PyTorch references: HF transformers' ViT (a third-party implementation), and the official
R-Drop ``vit_src`` code — its ViT structure, loss, schedule, training loop order, accuracy
and torchvision preprocessing — transcribed in PyTorch so the Paddle side is checked
against them.  Each transcription names the file it follows.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def hf_vit(hidden=768, layers=12, heads=12, image=224, patch=16, classes=100, seed=0, channels=3):
    """A random ``ViTForImageClassification`` configured as the package ViT (eager, eps 1e-6, no dropout)."""
    from transformers import ViTForImageClassification

    from rdrop_paddle.convert.hf import vit_config

    torch.manual_seed(seed)
    model = ViTForImageClassification(vit_config(hidden, layers, heads, image, patch, classes, channels))
    with torch.no_grad():  # HF zero-initialises biases, cls and pos: give every tensor values
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


def state_of(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def hf_logits(model, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(pixel_values=torch.from_numpy(images)).logits.numpy()


class OfficialViT(nn.Module):
    """The ViT of ``dropreg/R-Drop`` ``vit_src/models/modeling.py`` (jeonsworld ViT-pytorch),
    transcribed: same modules, same parameter names, same dropout sites.

    ``Embeddings``: patch conv, cls token, position embeddings, ``dropout(dropout_rate)``.
    ``Attention``: separate query/key/value/out Linears; ``attn_dropout`` on the
    probabilities and ``proj_dropout`` after ``out``, both at ``attention_dropout_rate``.
    ``Mlp``: fc1, GELU, dropout, fc2, dropout (one ``Dropout(dropout_rate)``, applied twice).
    Pre-norm blocks with LayerNorm eps 1e-6, ``encoder_norm``, ``head`` on the class token.
    """

    def __init__(self, hidden=64, layers=4, heads=4, mlp=256, image=8, patch=4, channels=1,
                 classes=10, dropout_rate=0.1, attention_dropout_rate=0.0):
        super().__init__()
        self.heads = heads
        n = (image // patch) ** 2
        emb = nn.Module()
        emb.patch_embeddings = nn.Conv2d(channels, hidden, patch, stride=patch)
        emb.position_embeddings = nn.Parameter(torch.randn(1, n + 1, hidden) * 0.02)
        emb.cls_token = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        emb.dropout = nn.Dropout(dropout_rate)
        enc = nn.Module()
        enc.layer = nn.ModuleList()
        for _ in range(layers):
            block = nn.Module()
            block.attention_norm, block.ffn_norm = nn.LayerNorm(hidden, eps=1e-6), nn.LayerNorm(hidden, eps=1e-6)
            block.attn = nn.Module()
            for name in ("query", "key", "value", "out"):
                setattr(block.attn, name, nn.Linear(hidden, hidden))
            block.attn.attn_dropout = nn.Dropout(attention_dropout_rate)
            block.attn.proj_dropout = nn.Dropout(attention_dropout_rate)
            block.ffn = nn.Module()
            block.ffn.fc1, block.ffn.fc2 = nn.Linear(hidden, mlp), nn.Linear(mlp, hidden)
            block.ffn.dropout = nn.Dropout(dropout_rate)
            enc.layer.append(block)
        enc.encoder_norm = nn.LayerNorm(hidden, eps=1e-6)
        self.transformer = nn.Module()
        self.transformer.embeddings, self.transformer.encoder = emb, enc
        self.head = nn.Linear(hidden, classes)

    def _attention(self, a, x):
        b, n, d = x.shape

        def heads(t):
            return t.view(b, n, self.heads, d // self.heads).permute(0, 2, 1, 3)

        q, k, v = heads(a.query(x)), heads(a.key(x)), heads(a.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        probs = a.attn_dropout(torch.softmax(scores, dim=-1))
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, n, d)
        return a.proj_dropout(a.out(context))

    def forward(self, x):
        e = self.transformer.embeddings
        x = e.patch_embeddings(x).flatten(2).transpose(-1, -2)
        x = torch.cat((e.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = e.dropout(x + e.position_embeddings)
        for blk in self.transformer.encoder.layer:
            x = x + self._attention(blk.attn, blk.attention_norm(x))
            h = blk.ffn_norm(x)
            x = x + blk.ffn.dropout(blk.ffn.fc2(blk.ffn.dropout(F.gelu(blk.ffn.fc1(h)))))
        return self.head(self.transformer.encoder.encoder_norm(x)[:, 0])


def official_compute_kl_loss(p, q, pad_mask=None):
    """The R-Drop README snippet (dropreg/R-Drop); its pad_mask is True = padding."""
    p_loss = F.kl_div(F.log_softmax(p, dim=-1), F.softmax(q, dim=-1), reduction="none")
    q_loss = F.kl_div(F.log_softmax(q, dim=-1), F.softmax(p, dim=-1), reduction="none")
    if pad_mask is not None:
        p_loss.masked_fill_(pad_mask, 0.0)
        q_loss.masked_fill_(pad_mask, 0.0)
    return (p_loss.sum() + q_loss.sum()) / 2


def official_readme_loss(p, q, y, alpha):
    """README usage: ``0.5 * (CE1 + CE2) + alpha * compute_kl_loss(p, q)``."""
    return 0.5 * (F.cross_entropy(p, y) + F.cross_entropy(q, y)) + alpha * official_compute_kl_loss(p, q)


def official_vit_src_loss(p, q, y, alpha):
    """``vit_src/models/modeling.py`` ``VisionTransformer.forward``: CE1 + CE2 + alpha *
    (KLsum(p||q) + KLsum(q||p)), not halved."""
    kl_pq = F.kl_div(F.log_softmax(q, dim=-1), F.softmax(p, dim=-1), reduction="sum")
    kl_qp = F.kl_div(F.log_softmax(p, dim=-1), F.softmax(q, dim=-1), reduction="sum")
    return F.cross_entropy(p, y) + F.cross_entropy(q, y) + alpha * (kl_pq + kl_qp)


def official_bert_kl_loss(p_logits, q_logits, y):
    """``bert_kl`` of ``huggingface_transformer_src/src/transformers/models/bert/modeling_bert.py``:
    CE1 + CE2 + 0.5 * (KLsum(q||p) + KLsum(p||q)) / 2 (classification branch)."""
    p, q = F.log_softmax(p_logits, dim=-1), F.log_softmax(q_logits, dim=-1)
    kl = F.kl_div(p, q.exp(), reduction="none").sum()
    reverse_kl = F.kl_div(q, p.exp(), reduction="none").sum()
    return F.cross_entropy(p_logits, y) + F.cross_entropy(q_logits, y) + 0.5 * (kl + reverse_kl) / 2.


def paddlenlp_rdrop_loss_torch(p, q, reduction):
    """paddlenlp.losses.RDropLoss transcribed to torch.  Paddle's ``kl_div`` 'mean' is the
    mean over all elements, which is torch's 'mean' (torch warns about that name)."""
    def kl(log_input, target):
        terms = F.kl_div(log_input, target, reduction="none")
        return {"none": terms, "sum": terms.sum(), "mean": terms.mean(),
                "batchmean": terms.sum() / terms.shape[0]}[reduction]

    p_loss = kl(F.log_softmax(p, dim=-1), F.softmax(q, dim=-1))
    q_loss = kl(F.log_softmax(q, dim=-1), F.softmax(p, dim=-1))
    return (p_loss.sum() + q_loss.sum()) / 2


class OfficialWarmupCosine(torch.optim.lr_scheduler.LambdaLR):
    """``vit_src/utils/scheduler.py`` ``WarmupCosineSchedule`` (cycles 0.5)."""

    def __init__(self, optimizer, warmup_steps, t_total, cycles=0.5):
        self.warmup_steps, self.t_total, self.cycles = warmup_steps, t_total, cycles
        super().__init__(optimizer, self.lr_lambda)

    def lr_lambda(self, step):
        if step < self.warmup_steps:
            return float(step) / float(max(1.0, self.warmup_steps))
        progress = float(step - self.warmup_steps) / float(max(1, self.t_total - self.warmup_steps))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(self.cycles) * 2.0 * progress)))


def official_update(model, optimizer, scheduler, loss, max_grad_norm=1.0):
    """One update in the order of ``vit_src/train.py``: backward, clip, scheduler.step(),
    optimizer.step(), zero_grad.  Returns the learning rate the update used."""
    import warnings

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    with warnings.catch_warnings():  # torch warns about this order; it is the official one
        warnings.simplefilter("ignore", UserWarning)
        scheduler.step()
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    optimizer.zero_grad()
    return lr


def official_topk(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> list[int]:
    """Correct counts with ``torch.topk`` (top-1 equals vit_src's argmax ``simple_accuracy``)."""
    top = torch.topk(logits, max(ks), dim=1).indices
    return [int((top[:, :k] == labels[:, None]).any(dim=1).sum()) for k in ks]


def torchvision_pipeline(image, size: int, box=None) -> tuple[np.ndarray, str]:
    """``vit_src/utils/data_utils.py``'s test (``box=None``: Resize) or train (``RandomResizedCrop``
    at ``box``) transform of a PIL image, then ToTensor and Normalize(0.5, 0.5).

    Uses torchvision when installed; otherwise its PIL calls transcribed (``F.resize`` is
    ``img.resize(size[::-1], BILINEAR)``, ``F.crop`` is ``img.crop((left, top, left + w,
    top + h))``, ``to_tensor`` divides the HWC bytes by 255).  Returns the array and which.
    """
    try:
        import torchvision.transforms.functional as TF
    except ImportError:
        from PIL import Image

        if box is not None:
            top, left, h, w = box
            image = image.crop((left, top, left + w, top + h))
        image = image.resize((size, size), Image.BILINEAR)
        t = torch.from_numpy(np.array(image, np.uint8, copy=True)).permute(2, 0, 1).float().div(255)
        source = "torchvision's PIL calls transcribed (torchvision not installed)"
    else:
        image = TF.resize(image, [size, size]) if box is None else TF.resized_crop(image, *box, [size, size])
        t = TF.to_tensor(image)
        source = "torchvision"
    return ((t - 0.5) / 0.5).numpy(), source
