"""PaddleNLP's own ERNIE and BERT modeling files (paddlenlp 2.8.1's wheel), run on their own.

paddlenlp does not import beside today's huggingface_hub (it does with huggingface_hub 0.25.2 and
aistudio-sdk 0.2.6 in a folder of its own, about 1 GB with its dependencies, too much for the
suite), so the wheel is downloaded without dependencies and its ``ernie``/``bert`` modeling and
configuration files are loaded as they are, beside small stand-ins for the package machinery
they import (``PretrainedModel``, ``PretrainedConfig``, output classes), which take no part in
the forward.  ``save_pretrained`` is what PaddleNLP's writes: ``paddle.save`` of the state dict as
``model_state.pdparams`` and the config's attributes as ``config.json``; ``init_weights`` applies
the files' own ``_init_weights`` after construction, as PaddleNLP's ``_post_init`` does (it sets
ERNIE's LayerNorm epsilon to 1e-12)."""
import os
import subprocess
import sys
import zipfile

STUBS = {
    "paddlenlp/__init__.py": "",
    "paddlenlp/layers/__init__.py": "from paddle.nn import Linear\n",
    "paddlenlp/utils/__init__.py": "",
    "paddlenlp/utils/env.py": 'CONFIG_NAME = "config.json"\n',
    "paddlenlp/utils/converter.py": "class StateDictNameMapping:\n    pass\n\n\ndef init_name_mappings(*a, **k):\n"
                                    "    return []\n",
    "paddlenlp/transformers/__init__.py": "from .model_utils import PretrainedModel, register_base_model\n",
    "paddlenlp/transformers/model_utils.py": (
        "import paddle\n\n\nclass PretrainedModel(paddle.nn.Layer):\n"
        "    def __init__(self, config=None, *args, **kwargs):\n        super().__init__()\n"
        "        self.config = config\n\n\ndef register_base_model(cls):\n    return cls\n"),
    "paddlenlp/transformers/configuration_utils.py": (
        "class PretrainedConfig:\n"
        "    def __init__(self, **kwargs):\n"
        "        self.num_labels = kwargs.pop('num_labels', kwargs.pop('num_classes', 2))\n"
        "        self.classifier_dropout = kwargs.pop('classifier_dropout', None)\n"
        "        for key, value in kwargs.items():\n            setattr(self, key, value)\n\n"
        "    def __getattr__(self, name):  # output_attentions, use_return_dict, ...: off\n"
        "        if name.startswith('__'):\n            raise AttributeError(name)\n        return None\n\n"
        "    def to_dict(self):\n        return {k: v for k, v in vars(self).items() if not k.startswith('_')}\n"),
}
FILES = ("paddlenlp/transformers/model_outputs.py", "paddlenlp/transformers/ernie/__init__.py", "paddlenlp/transformers/ernie/modeling.py",
         "paddlenlp/transformers/ernie/configuration.py", "paddlenlp/transformers/bert/__init__.py",
         "paddlenlp/transformers/bert/modeling.py", "paddlenlp/transformers/bert/configuration.py")


def _utils_stub(real: str) -> str:
    """``paddlenlp/transformers/utils.py`` reduced to the one function ``model_outputs.py`` imports
    (its own source, cut out of the wheel's file)."""
    import ast

    tree = ast.parse(real)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "adapt_stale_fwd_patch")
    return "import functools\nimport inspect\nimport warnings\n\nfrom paddle.nn import Layer\n\n\n" + \
        ast.get_source_segment(real, fn) + "\n"


def package(folder) -> str:
    """Download the wheel into ``folder`` and lay out the ``paddlenlp`` stand-in package; its root."""
    res = subprocess.run([sys.executable, "-m", "pip", "download", "paddlenlp==2.8.1", "--no-deps", "-d",
                          str(folder), "-q"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"could not fetch the paddlenlp wheel from the registry: {res.stderr[-500:]}"
    (wheel,) = [f for f in os.listdir(folder) if f.startswith("paddlenlp-2.8.1-") and f.endswith(".whl")]
    root = os.path.join(str(folder), "pkg")
    with zipfile.ZipFile(os.path.join(folder, wheel)) as zf:
        files = {name: (b"" if name.endswith("__init__.py") else zf.read(name)) for name in FILES}
        files["paddlenlp/transformers/utils.py"] = _utils_stub(zf.read("paddlenlp/transformers/utils.py").decode())
    files.update(STUBS)
    for name, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
        with open(os.path.join(root, name), "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
    return root


# Run in a child process: PaddleNLP's model_outputs.py patches paddle.nn.TransformerEncoder's
# forward for the whole process, which no other test should see.
_CHILD = r"""
import json, os, sys
import numpy as np, paddle
root, kind, out, vocab = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, root)
if kind == "ernie":
    from paddlenlp.transformers.ernie.modeling import ErnieConfig as Config, ErnieForSequenceClassification as Model
    extra = {"task_type_vocab_size": 3, "use_task_id": True}
else:
    from paddlenlp.transformers.bert.modeling import BertConfig as Config, BertForSequenceClassification as Model
    extra = {}
config = Config(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                max_position_embeddings=40, num_labels=3, initializer_range=0.2, **extra)
paddle.seed(0)
model = Model(config)
model.apply(model._init_weights)  # what PaddleNLP's _post_init does after __init__
model.eval()
os.makedirs(out, exist_ok=True)  # what PaddleNLP's save_pretrained writes
paddle.save(model.state_dict(), os.path.join(out, "model_state.pdparams"))
values = {**config.to_dict(), "model_type": kind, "architectures": [type(model).__name__]}
values["id2label"] = {str(i): f"LABEL_{i}" for i in range(values.pop("num_labels"))}
json.dump(values, open(os.path.join(out, "config.json"), "w"), indent=2)
ids, types = np.load(os.path.join(out, "ids.npy")), np.load(os.path.join(out, "types.npy"))
with paddle.no_grad():  # PaddleNLP's own attention mask, from pad_token_id
    logits = model(paddle.to_tensor(ids), token_type_ids=paddle.to_tensor(types))
np.save(os.path.join(out, "logits.npy"), logits.numpy())
"""


def checkpoint(root: str, kind: str, out, ids, types, vocab: int):
    """Write PaddleNLP's ``kind`` classifier (random, std 0.2) to ``out`` as its
    ``save_pretrained`` does; returns PaddleNLP's logits on ``ids``/``types``."""
    import numpy as np

    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "ids.npy"), ids)
    np.save(os.path.join(out, "types.npy"), types)
    res = subprocess.run([sys.executable, "-c", _CHILD, root, kind, str(out), str(vocab)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    logits = np.load(os.path.join(out, "logits.npy"))
    for name in ("ids.npy", "types.npy", "logits.npy"):
        os.remove(os.path.join(out, name))
    return logits
