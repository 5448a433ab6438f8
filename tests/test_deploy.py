"""Train -> export -> Paddle Inference on image files: the same predictions as evaluation."""
import json

import numpy as np
import paddle
import pytest
from PIL import Image

from helpers import one_error_line, run_tool, train_ok
from rdrop_paddle.commands.model import load_weights
from rdrop_paddle.tasks import task_of
from rdrop_paddle.config import load_config
from rdrop_paddle.data.digits import load_digits_split

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: the full tier only


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    run, model_dir, pngs = root / "run", root / "model", root / "pngs"
    train_ok("-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={run}", "-o", "Global.max_steps=30",
             "-o", "Global.eval_every=30")
    res = run_tool("tools/export_model.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={run}",
                   "--out", model_dir)
    assert res.returncode == 0, res.stderr[-3000:]
    pngs.mkdir()
    val = load_digits_split(0.2, 0)["val"]
    for i, (image, label) in enumerate(zip(*val)):
        Image.fromarray(image).save(pngs / f"{i:03d}_label{label}.png")
    return run, model_dir, pngs, val


def test_exported_predictions_equal_evaluation(exported, tmp_path):
    run, model_dir, pngs, (images, labels) = exported
    assert (model_dir / "infer_cfg.json").is_file() and (model_dir / "inference.pdiparams").is_file()
    cfg = json.loads((model_dir / "infer_cfg.json").read_text())
    assert cfg["image_size"] == 8 and cfg["in_chans"] == 1 and cfg["class_names"] == [str(i) for i in range(10)]
    res = run_tool("tools/infer.py", "--model-dir", model_dir, "--images", pngs, "--topk", 3,
                   "--out", tmp_path / "pred.json")
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()  # --backend auto without inference.onnx: Paddle Inference, named
    assert lines[0].startswith("backend: paddle (--backend auto") and lines[1] == "| image | top-1 | top-2 | top-3 |"
    predictions = json.loads((tmp_path / "pred.json").read_text())["predictions"]
    assert len(predictions) == len(labels) == 359
    top1 = 100.0 * np.mean([p["topk"][0]["class"] == y for p, y in zip(predictions, labels)])
    ev = run_tool("tools/eval.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={run}")
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert top1 == pytest.approx(json.loads((run / "metrics.json").read_text())["top1"], abs=1e-9)
    cfg = load_config("configs/quickstart.yaml")
    model = task_of(cfg).model(cfg)
    load_weights(model, str(run / "best.pdparams"))
    model.eval()
    x = ((images[:, None].astype(np.float32) / 255.0) - 0.5) / 0.5
    dygraph = model(paddle.to_tensor(x)).numpy()
    np.testing.assert_allclose(np.array([p["logits"] for p in predictions]), dygraph, atol=1e-5)


def test_bad_inference_input_is_one_line(exported, tmp_path):
    _, model_dir, pngs, _ = exported
    assert "model folder not found" in one_error_line(
        run_tool("tools/infer.py", "--model-dir", tmp_path / "none", "--images", pngs))
    (tmp_path / "notes.png").write_text("not an image")
    assert "not an image this tool can read" in one_error_line(
        run_tool("tools/infer.py", "--model-dir", model_dir, "--images", tmp_path / "notes.png"))
    assert "image not found" in one_error_line(
        run_tool("tools/infer.py", "--model-dir", model_dir, "--images", tmp_path / "missing.png"))


def test_other_image_modes_predict_as_the_grey_file(exported, tmp_path):
    """RGB, palette, RGBA and 16-bit copies of a grey digit are read as that digit (as in training)."""
    from rdrop_paddle.deploy.predictor import Predictor, list_images

    _, model_dir, pngs, _ = exported
    first = list_images([str(pngs)])[0]
    grey = Image.open(first)
    copies = {"rgb.png": grey.convert("RGB"), "palette.png": grey.convert("P"), "rgba.png": grey.convert("RGBA"),
              "16bit.png": Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)}
    for name, image in copies.items():
        image.save(tmp_path / name)
    logits = Predictor(str(model_dir)).logits([first] + [str(tmp_path / n) for n in copies])
    for row in logits[1:]:
        np.testing.assert_array_equal(row, logits[0])


def test_bf16_inference_stays_close_to_fp32(exported, tmp_path):
    """--precision bf16 (oneDNN bfloat16): logits within bf16 rounding of fp32, nearly every top-1
    the same, named in the benchmark line; other backends refuse it in one line."""
    _, model_dir, pngs, _ = exported
    outs = {}
    for precision in ("fp32", "bf16"):
        res = run_tool("tools/infer.py", "--model-dir", model_dir, "--images", pngs, "--precision", precision,
                       "--benchmark", "--repeats", 1, "--out", tmp_path / f"{precision}.json")
        assert res.returncode == 0 and f"precision: {precision}," in res.stdout, res.stderr[-2000:]
        outs[precision] = np.array([p["logits"] for p in json.loads((tmp_path / f"{precision}.json").read_text())["predictions"]])
    scale = np.abs(outs["fp32"]).max()
    assert np.abs(outs["bf16"] - outs["fp32"]).max() <= 0.05 * scale
    assert (outs["bf16"].argmax(1) == outs["fp32"].argmax(1)).mean() >= 0.97
    assert "--backend onnxruntime --precision bf16 is not built" in one_error_line(run_tool(
        "tools/infer.py", "--model-dir", model_dir, "--images", pngs, "--precision", "bf16", "--backend", "onnxruntime"))
    assert "--precision bf16 is Paddle Inference's oneDNN on CPU" in one_error_line(run_tool(
        "tools/infer.py", "--model-dir", model_dir, "--images", pngs, "--precision", "bf16", "--enable-mkldnn", "False"))


def test_onnx_runtime_predicts_as_paddle_inference(exported, tmp_path):
    import onnx

    run, _, pngs, (_, labels) = exported
    model_dir = tmp_path / "model"
    res = run_tool("tools/export_model.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={run}",
                   "--out", model_dir, "--onnx")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("exported ") and res.stdout.count("\n") == 1, res.stdout  # one line
    assert not any(noise in res.stderr for noise in ("Paddle2ONNX", "PIR", "ccache", "[I]")), res.stderr
    onnx.checker.check_model(str(model_dir / "inference.onnx"), full_check=True)
    logits = {}
    for backend in ("paddle", "onnxruntime"):
        res = run_tool("tools/infer.py", "--model-dir", model_dir, "--images", pngs, "--backend", backend,
                       "--out", tmp_path / f"{backend}.json")
        assert res.returncode == 0, res.stderr[-3000:]
        predictions = json.loads((tmp_path / f"{backend}.json").read_text())["predictions"]
        logits[backend] = np.array([p["logits"] for p in predictions])
    assert logits["paddle"].shape == (len(labels), 10)
    np.testing.assert_allclose(logits["onnxruntime"], logits["paddle"], atol=1e-5)
    assert (logits["onnxruntime"].argmax(1) == logits["paddle"].argmax(1)).all()
    import importlib.util  # --backend auto (the default) takes the fastest installed runtime for the ONNX file

    expected = "openvino" if importlib.util.find_spec("openvino") else "onnxruntime"
    res = run_tool("tools/infer.py", "--model-dir", model_dir, "--images", pngs, "--out", tmp_path / "auto.json")
    assert res.returncode == 0 and res.stdout.startswith(f"backend: {expected} (--backend auto"), res.stderr[-2000:]
    auto = np.array([p["logits"] for p in json.loads((tmp_path / "auto.json").read_text())["predictions"]])
    np.testing.assert_allclose(auto, logits["paddle"], atol=1e-5)


def test_onnx_without_its_packages_is_one_line_and_writes_nothing(exported, tmp_path):
    run, model_dir, pngs, _ = exported
    missing = tmp_path / "site"  # an environment where neither package can be imported
    for name in ("paddle2onnx", "onnxruntime"):
        (missing / name).mkdir(parents=True)
        (missing / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    env = {"PYTHONPATH": str(missing)}
    res = run_tool("tools/export_model.py", "-c", "configs/quickstart.yaml", "-o", f"Global.output_dir={run}",
                   "--out", tmp_path / "out", "--onnx", env=env)
    assert one_error_line(res) == "error: --onnx needs paddle2onnx: pip install paddle2onnx"
    assert not (tmp_path / "out").exists()
    res = run_tool("tools/infer.py", "--model-dir", model_dir, "--images", pngs, "--backend", "onnxruntime",
                   "--out", tmp_path / "p.json", env=env)
    assert one_error_line(res) == "error: --backend onnxruntime needs onnxruntime: pip install onnxruntime"
    assert "no inference.onnx" in one_error_line(run_tool("tools/infer.py", "--model-dir", model_dir, "--images", pngs,
                                                      "--backend", "onnxruntime"))
