"""PaddleClas's own predictor on an exported folder, as it is: ``deploy/python/predict_cls.py``
of the ``paddleclas`` wheel (PyPI, installed with ``--no-deps``: README's test command), run
as its ``__main__`` with ``-c <export>/inference.yml`` — its config parser, its preprocessing
operators, its Paddle Inference predictor and its ``Topk`` — gives ``tools/infer.py``'s top-5
classes and names."""
import importlib.util
import json
import os
import re

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import make_cifar100, run_tool

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only

pytest.importorskip("cv2", reason="PaddleClas's predictor reads images with OpenCV (opencv-python-headless)")
if importlib.util.find_spec("paddleclas") is None:
    pytest.skip("paddleclas is not installed (pip install --no-deps -r tests/requirements-nodeps.txt)",
                allow_module_level=True)

# PaddleClas's package __init__ imports its whole model zoo (and faiss); the predictor needs only
# deploy/: the package is entered as a bare namespace and predict_cls.py run unmodified, nothing
# patched.  Paddle 3.3's Paddle Inference cannot build a predictor for any PIR program once
# enable_memory_optim() was called (which PaddleClas's Predictor always does): on such a Paddle the
# export's inference.yml selects PaddleClas's own ONNX Runtime predictor (Global.use_onnx).
DRIVER = """
import importlib.util, os, runpy, sys, types
root = importlib.util.find_spec("paddleclas").submodule_search_locations[0]
package = types.ModuleType("paddleclas")
package.__path__ = [root]
sys.modules["paddleclas"] = package
script = os.path.join(root, "deploy", "python", "predict_cls.py")
sys.argv = [script] + sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""
LINE = re.compile(r"^(\S+):\s+class id\(s\): \[([\d, ]+)\], score\(s\): \[([-\d., ]+)\], label_name\(s\): (.*)$")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A 3-channel ViT (the classifier head random, so that classes are well apart) and data."""
    import paddle

    from rdrop_paddle.models import build_model

    root = tmp_path_factory.mktemp("paddleclas")
    paddle.seed(0)
    model = build_model("vit_tiny_patch16_224", num_classes=100, image_size=32, in_chans=3)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    rng = np.random.RandomState(0)
    state["head.weight"] = rng.normal(0, 0.5, state["head.weight"].shape).astype(np.float32)
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(root / "w.pdparams"))
    make_cifar100(root / "cifar-100-python.tar.gz")
    images = root / "images"
    images.mkdir()
    for i in range(4):  # colour PNGs and a JPEG, square and not
        pixels = rng.randint(0, 256, size=(32 + 8 * i, 32 + 16 * (i % 2), 3)).astype(np.uint8)
        Image.fromarray(pixels).save(images / (f"img_{i}.png" if i < 3 else f"img_{i}.jpg"))
    return root


def _onnx() -> list:
    """``--onnx`` where PaddleClas's Paddle Inference predictor fails on this Paddle (3.3: its ONNX
    Runtime path reads ``inference.onnx``); none where it works (2.6, whose programs paddle2onnx 2
    does not convert)."""
    from rdrop_paddle.deploy.paddleclas import paddleclas_inference_works

    return [] if paddleclas_inference_works() else ["--onnx"]


def _export(root, out, *extra):
    """The export as a user writes it on this Paddle (:func:`_onnx`)."""
    from rdrop_paddle.deploy.paddleclas import paddleclas_inference_works

    res = run_tool("tools/export_model.py", "-c", "configs/vit_cifar100.yaml", "-o", "Model.name=vit_tiny_patch16_224",
                   "-o", "Model.image_size=32", "-o", f"Model.pretrained={root / 'w.pdparams'}",
                   "-o", f"Data.root={root / 'cifar-100-python.tar.gz'}", "--out", out, *_onnx(), *extra)
    assert res.returncode == 0, res.stderr[-3000:]
    config = yaml.safe_load((out / "inference.yml").read_text())
    assert config["Global"].get("use_onnx", False) is (not paddleclas_inference_works())  # Paddle 3.3: True
    return res


def _paddleclas(tmp_path, model_dir, images):
    (tmp_path / "driver.py").write_text(DRIVER)
    res = run_tool(str(tmp_path / "driver.py"), "-c", model_dir / "inference.yml",
                   "-o", f"Global.infer_imgs={images}", "-o", "Global.batch_size=2")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    found = {}
    for line in res.stdout.splitlines():
        m = LINE.match(line)
        if m:
            found[m.group(1)] = ([int(c) for c in m.group(2).split(",")], [float(s) for s in m.group(3).split(",")],
                                 m.group(4))
    return found


def _ours(tmp_path, model_dir, images):
    res = run_tool("tools/infer.py", "--model-dir", model_dir, "--images", images, "--topk", 5,
                   "--out", tmp_path / "ours.json")
    assert res.returncode == 0, res.stderr[-3000:]
    return {p["image"].rsplit("/", 1)[1]: p for p in json.loads((tmp_path / "ours.json").read_text())["predictions"]}


@pytest.mark.parametrize("crop_pct", [1.0, 0.875])
def test_paddleclas_predict_cls_reads_the_export_as_it_is(weights, tmp_path, crop_pct):
    model_dir = tmp_path / "inference"
    _export(weights, model_dir, "-o", f"Data.crop_pct={crop_pct}")
    names = (model_dir / "label_list.txt").read_text().splitlines()
    assert names[:2] == ["0 c0", "1 c1"] and len(names) == 100  # PaddleClas's class_id_map_file
    images = weights / "images" if crop_pct == 1.0 else weights / "images" / "img_0.png"  # crops: square only
    theirs, ours = _paddleclas(tmp_path, model_dir, images), _ours(tmp_path, model_dir, images)
    assert sorted(theirs) == sorted(ours) and len(theirs) == (4 if crop_pct == 1.0 else 1)
    for name, (ids, scores, labels) in theirs.items():
        assert ids == [t["class"] for t in ours[name]["topk"]], name
        assert labels == str([t["name"] for t in ours[name]["topk"]]), name
        np.testing.assert_allclose(scores, [ours[name]["logits"][c] for c in ids], atol=0.006)  # logits, 2 decimals


def test_add_softmax_gives_paddleclas_probabilities(weights, tmp_path):
    model_dir = tmp_path / "inference"
    _export(weights, model_dir, "--add-softmax")
    assert json.loads((model_dir / "infer_cfg.json").read_text())["output"] == "probabilities"
    theirs, ours = _paddleclas(tmp_path, model_dir, weights / "images"), _ours(tmp_path, model_dir, weights / "images")
    for name, (ids, scores, _) in theirs.items():
        assert ids == [t["class"] for t in ours[name]["topk"]]
        np.testing.assert_allclose(scores, [t["prob"] for t in ours[name]["topk"]], atol=0.006)
        assert sum(ours[name]["probabilities"]) == pytest.approx(1.0, abs=1e-5)


def test_a_grey_model_runs_through_paddleclas_from_colour_decoded_images(tmp_path):
    """The quickstart's 1-channel model: PaddleClas decodes every image in colour, so the export
    has a colour-input copy (luma first) in paddleclas/, which inference.yml names; on grey
    images PaddleClas's answers are tools/infer.py's, on a colour one its top-1 too."""
    import paddle

    from rdrop_paddle.models import build_model

    paddle.seed(0)
    model = build_model("vit_nano_patch4_8")
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    rng = np.random.RandomState(1)
    state["head.weight"] = rng.normal(0, 0.5, state["head.weight"].shape).astype(np.float32)
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(tmp_path / "w.pdparams"))
    out = tmp_path / "inference"
    for _ in range(2):  # exported twice into one folder: the copy's folder is replaced, not refused
        res = run_tool("tools/export_model.py", "-c", "configs/quickstart.yaml", "-o",
                       f"Model.pretrained={tmp_path / 'w.pdparams'}", "--out", out, *_onnx())
        assert res.returncode == 0, res.stderr[-3000:]
    config = yaml.safe_load((out / "inference.yml").read_text())
    assert config["Global"]["inference_model_dir"] == str(out / "paddleclas")
    assert {"inference.pdiparams", *(["inference.onnx"] if _onnx() else [])} <= set(os.listdir(out / "paddleclas"))
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray(rng.randint(0, 256, size=(8, 8)).astype(np.uint8), mode="L").save(images / f"grey_{i}.png")
    theirs, ours = _paddleclas(tmp_path, out, images), _ours(tmp_path, out, images)
    assert sorted(theirs) == sorted(ours) == [f"grey_{i}.png" for i in range(3)]
    for name, (ids, scores, _) in theirs.items():
        assert ids == [t["class"] for t in ours[name]["topk"]], name
        np.testing.assert_allclose(scores, [ours[name]["logits"][c] for c in ids], atol=0.006)
    colour = tmp_path / "colour"
    colour.mkdir()
    Image.fromarray(rng.randint(0, 256, size=(8, 8, 3)).astype(np.uint8)).save(colour / "rgb.png")
    theirs, ours = _paddleclas(tmp_path, out, colour), _ours(tmp_path, out, colour)
    assert theirs["rgb.png"][0][0] == ours["rgb.png"]["topk"][0]["class"]


def test_without_onnx_on_a_paddle_that_cannot_run_paddleclas_a_notice_says_so(weights, tmp_path):
    from rdrop_paddle.deploy.paddleclas import paddleclas_inference_works

    if paddleclas_inference_works():
        pytest.skip("this Paddle runs PaddleClas's Paddle Inference predictor: nothing to say")
    res = run_tool("tools/export_model.py", "-c", "configs/vit_cifar100.yaml", "-o", "Model.name=vit_tiny_patch16_224",
                   "-o", "Model.image_size=32", "-o", f"Model.pretrained={weights / 'w.pdparams'}",
                   "-o", f"Data.root={weights / 'cifar-100-python.tar.gz'}", "--out", tmp_path / "inference")
    assert res.returncode == 0 and "export with --onnx and inference.yml selects" in res.stdout, res.stderr[-2000:]


def test_the_paddle_inference_bug_reproduces_in_one_layer():
    """The upstream report of docs/inference.md, as a test: it fails on Paddle 3.3 (xfail there)
    and passes where Paddle fixed it — then the ONNX detour above turns itself off."""
    import paddle

    from rdrop_paddle.deploy.paddleclas import paddleclas_inference_works

    works = paddleclas_inference_works()
    if paddle.__version__.startswith("3.3."):
        assert not works
