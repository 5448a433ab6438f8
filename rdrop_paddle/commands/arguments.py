"""The command line of every tool, kept apart from the commands so that parsing (and
``--help``) imports nothing heavier than argparse: Paddle is imported only once the
arguments are known to be good."""
from __future__ import annotations

import argparse
import os

DEMO_IMAGES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "demo_images")
ALIGN_STEPS = ("forward", "dropout_sites", "loss", "backward", "lr", "metric", "data", "train", "inference",
               "text_tokenizer", "text_forward", "text_loss", "text_train")
# rdrop_paddle.convert.FORMATS (a test checks they agree), plus the traced route and PaddleNLP's text folders
CONVERT_FORMATS = ("auto", "npz", "rdrop", "hf", "timm", "paddleclas", "x2paddle", "paddlenlp")


def config_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-c", "--config", required=True, help="YAML config file")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value (repeatable), e.g. -o Global.max_steps=10")
    return parser


def train() -> argparse.ArgumentParser:
    return config_parser("Train a ViT with R-Drop (multi-card: python -m paddle.distributed.launch "
                         "--nproc_per_node N tools/train.py -c ...).")


def evaluate() -> argparse.ArgumentParser:
    p = config_parser("Evaluate a checkpoint (top-1 / top-5); Model.pretrained, else the run's best: "
                      "Global.output_dir/best.pdparams, or best_ema.pdparams when the EMA scored best.")
    flag(p, "--per-class", "also print each class's top-1 accuracy, by name")
    _no_ema(p)
    return p


def _no_ema(p: argparse.ArgumentParser) -> None:
    flag(p, "--no-ema", "take Global.output_dir/best.pdparams (the raw weights) even if the run kept an EMA")


def export() -> argparse.ArgumentParser:
    p = config_parser("Export a checkpoint for Paddle Inference (and, with --onnx, ONNX Runtime).")
    p.add_argument("--out", required=True, help="folder for the inference model")
    flag(p, "--onnx", "also write inference.onnx through paddle2onnx (pip install paddle2onnx)")
    flag(p, "--add-softmax", "end the exported graph with a softmax: it outputs probabilities, as PaddleClas's "
                             "Global.infer_add_softmax does (default: logits)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                   help="int8: also write inference.int8.xml, post-training quantised by NNCF on --calib-images "
                        "(implies --onnx; pip install openvino nncf); run it with infer.py --backend openvino "
                        "--precision int8")
    p.add_argument("--calib-images", default=None, metavar="DIR",
                   help="training images (a folder, or class folders one level down) to calibrate int8 on")
    _no_ema(p)
    return p


def infer() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Predict images with an exported model (Paddle Inference "
                                            "or ONNX Runtime); prints a table, writes JSON.")
    p.add_argument("--model-dir", required=True, help="folder written by tools/export_model.py")
    p.add_argument("--images", nargs="+", default=[DEMO_IMAGES],
                   help="image files (PNG, JPEG, ...) or folders of them (default: the package's demo digits, "
                        "so that a runner that passes no images, as TIPC's, still predicts)")
    p.add_argument("--text", nargs="+", default=None, help="texts to classify or score (a model exported from a text run); a tab splits a sentence pair")
    p.add_argument("--text-file", default=None, help="a UTF-8 file of texts to classify or score, one a line (text_a<TAB>text_b: a pair)")
    p.add_argument("--topk", type=int, default=5, help="classes listed per image (default 5)")
    p.add_argument("--batch-size", type=int, default=32, help="images per forward (default 32)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="Paddle Inference device")
    p.add_argument("--backend", choices=("auto", "paddle", "onnxruntime", "openvino"), default="auto",
                   help="auto (default): the fastest installed for the export, OpenVINO, then ONNX Runtime (both "
                        "need inference.onnx: export with --onnx), then Paddle Inference, named in the output; "
                        "paddle: Paddle Inference on inference.json/.pdmodel; onnxruntime: inference.onnx (pip "
                        "install onnxruntime); openvino: inference.onnx, or with --precision int8 "
                        "inference.int8.xml (pip install openvino)")
    p.add_argument("--cpu-threads", type=int, default=0,
                   help="CPU threads of the backend (default 0: the cores this process may use for Paddle "
                        "Inference, the backend's own choice for the others)")
    flag(p, "--enable-mkldnn", "oneDNN kernels in Paddle Inference on CPU (default: Paddle's own default)",
         default=None)
    p.add_argument("--precision", choices=("fp32", "int8", "bf16"), default="fp32",
                   help="int8: --backend openvino on the model export_model.py --precision int8 wrote; bf16: "
                        "Paddle Inference's oneDNN or OpenVINO bfloat16 kernels (AMX/AVX512-BF16 CPUs; logits "
                        "move by ~1e-2); default fp32 (docs/performance.md)")
    flag(p, "--benchmark", "time preprocess, inference and postprocess per image (warm-up, then --repeats "
                           "batches of --batch-size) and print them; also written to the JSON file")
    p.add_argument("--repeats", type=int, default=10, help="timed batches of --benchmark (default 10)")
    p.add_argument("--out", default="output/predictions.json", help="JSON file of the predictions")
    return p


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected True or False, got {text[:40]!r}")
    return text.lower() in ("true", "1")


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Argument errors as one ``error: ... (see PROG --help)`` line and exit 2, not argparse's
    usage block."""
    def error(message: str) -> None:
        import sys

        print(f"error: {message} (see {parser.prog} --help)", file=sys.stderr)
        sys.exit(2)

    parser.error = error
    return parser


def counts(low: int = 1, high: int = 1 << 20):
    """An argparse type: a comma-separated list of integers in [low, high] (one is a list too)."""
    def parse(text: str) -> list[int]:
        try:
            values = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            values = []
        if not values or not all(low <= v <= high for v in values):
            raise argparse.ArgumentTypeError(f"expected whole numbers in [{low}, {high:,}] separated by commas, "
                                             f"got {text[:40]!r}")
        return values
    return parse


def count(low: int = 1, high: int = 1 << 20):
    """An argparse type: one integer in [low, high]."""
    many = counts(low, high)

    def parse(text: str) -> int:
        values = many(text)
        if len(values) != 1:
            raise argparse.ArgumentTypeError(f"expected one whole number, got {text[:40]!r}")
        return values[0]
    return parse


def flag(p: argparse.ArgumentParser, name: str, help: str, default: bool | None = False) -> None:
    """A switch in both forms: ``--name`` as a person types it, ``--name=True|False`` as TIPC's
    runners write every flag (``key=value``)."""
    p.add_argument(name, nargs="?", const=True, default=default, type=_bool, metavar="{True,False}",
                   help=f"{help}; --{name.lstrip('-')} alone means True")


def convert() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Convert PyTorch, JAX or PaddleClas ViT weights to a Paddle state "
                                            "dict, or a Hugging Face BERT/ERNIE folder to a Paddle text folder.")
    p.add_argument("--src", required=True, help=".npz, .pth/.pt/.bin, .safetensors or .pdparams file; or a "
                                                "Hugging Face folder (config.json, weights, tokenizer files) with --format hf, or a "
                                                "PaddleNLP one (model_state.pdparams) with --format paddlenlp")
    p.add_argument("--format", default="auto", choices=CONVERT_FORMATS, help="source layout (default: detected)")
    p.add_argument("--model", default="vit_base_patch16_224", help="target model name")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classes of the target head (ViT: required; text: default the checkpoint's)")
    p.add_argument("--image-size", type=int, default=None, help="target image size (default: the model's)")
    p.add_argument("--out", required=True, help="the .pdparams file to write (text: a new folder)")
    return p


def align() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Check the Paddle side against PyTorch references, step by step.")
    p.add_argument("--out", default="output/align", help="folder of reprod_log files and reports")
    p.add_argument("--steps", default=",".join(ALIGN_STEPS), help="comma-separated subset of: "
                   + ", ".join(ALIGN_STEPS))
    p.add_argument("--plot", default=None, help="PNG of the train step's two loss curves")
    return p


def compare() -> argparse.ArgumentParser:
    p = config_parser("R-Drop against its alpha=0 baseline over several seeds.")
    p.add_argument("--seeds", type=int, default=5, help="seeds per arm (default 5)")
    p.add_argument("--out", default="output/compare", help="folder of the runs")
    p.add_argument("--image", default="images/rdrop_vs_baseline.png", help="PNG of the curves")
    return p


def study() -> argparse.ArgumentParser:
    p = config_parser("A low-data study: R-Drop against its baseline at several training-set fractions.")
    p.add_argument("--fractions", default="0.1,0.25,0.5,1", help="training-set fractions")
    p.add_argument("--seeds", type=int, default=5, help="seeds per fraction (default 5)")
    p.add_argument("--alphas", default="0.03,0.1,0.3,1", help="grid for choosing alpha")
    p.add_argument("--out", default="output/study", help="folder of the runs")
    p.add_argument("--image", default="images/rdrop_low_data.png", help="PNG of the result")
    return p


def plot_logs() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Plot a run's VisualDL curves to a PNG.")
    p.add_argument("--logdir", required=True, help="a run's output_dir (or its vdl folder)")
    p.add_argument("--out", default=None, help="PNG path (default: LOGDIR/curves.png)")
    return p


def demo_images() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Write scikit-learn's digits as image files in class folders "
                                            "and PaddleClas file lists (offline).")
    p.add_argument("--out", required=True, help="a new (or empty) folder")
    p.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    return p


def demo_text() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Write a generated review set in PaddleNLP's text-classification "
                                            "folder and a tiny Hugging Face BERT folder (offline).")
    p.add_argument("--out", required=True, help="a new (or empty) folder")
    p.add_argument("--train", type=int, default=2000, help="training reviews (default 2000)")
    return p
