"""Predict images (or texts) with an exported model through the fastest installed backend
(``--backend auto``: OpenVINO, ONNX Runtime, Paddle Inference) or the one named.

    python tools/infer.py --model-dir DIR --images PATH [PATH ...] [--topk 5] [--backend auto|paddle|onnxruntime|openvino]
    python tools/infer.py --model-dir TEXT_DIR --text "a sentence" [--text-file FILE]

Images are PNG/JPEG files or folders of them; preprocessing is the evaluation one, read
from the model's ``infer_cfg.json``.  Prints a table and writes the predictions as JSON.
"""
from __future__ import annotations

import os

from rdrop_paddle.errors import UserInputError
from rdrop_paddle.io import make_folder, write_json
from rdrop_paddle.utils.terminal import printable


MAX_TEXT_FILE_BYTES = 256 << 20


def read_texts(args) -> list[str]:
    """``--text`` values, then the non-empty lines of ``--text-file`` (a regular UTF-8 file of
    at most 256 MiB); each text is checked by the tokenizer before it is tokenised."""
    from rdrop_paddle.data.entries import check_regular

    texts = list(args.text or [])
    if args.text_file:
        path = args.text_file
        if not os.path.exists(path):
            raise UserInputError(f"--text-file {path}: no such file")
        check_regular(path, "--text-file ")
        if os.path.getsize(path) > MAX_TEXT_FILE_BYTES:
            raise UserInputError(f"--text-file {path}: larger than {MAX_TEXT_FILE_BYTES >> 20} MiB "
                                 f"({os.path.getsize(path):,} bytes); split it")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # never blocks, even if swapped for a FIFO
            with os.fdopen(fd, "rb") as f:
                raw = f.read(MAX_TEXT_FILE_BYTES + 1)
            if len(raw) > MAX_TEXT_FILE_BYTES:
                raise UserInputError(f"--text-file {path}: larger than {MAX_TEXT_FILE_BYTES >> 20} MiB; split it")
            texts += [line for line in raw.decode("utf-8").splitlines() if line.strip()]
        except OSError as e:
            raise UserInputError(f"cannot read --text-file {path}: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise UserInputError(f"--text-file {path}: not UTF-8 (byte {e.start})") from None
    if not texts:
        raise UserInputError("a text model needs --text \"...\" or --text-file FILE")
    return texts


def infer_text(args) -> None:
    """Predict ``--text`` / ``--text-file`` with an exported text model."""
    from rdrop_paddle.deploy.text import TextPredictor, table

    texts = read_texts(args)
    predictor = TextPredictor(args.model_dir, args.backend, args.cpu_threads or None, args.enable_mkldnn,
                              args.precision)
    results = predictor.predict(texts, args.topk, args.batch_size)
    make_folder(os.path.dirname(os.path.abspath(args.out)), "the folder of --out")
    replaced = os.path.isfile(args.out)
    write_json({"model_dir": args.model_dir, "predictions": results}, args.out)
    print(table(results, args.topk))
    print(f"wrote {printable(args.out)}" + (" (replacing the previous predictions)" if replaced else ""))


def run(args) -> None:
    from rdrop_paddle.deploy.predictor import Predictor, list_images
    from rdrop_paddle.deploy.text import is_text_folder

    if min(args.topk, args.batch_size, args.repeats) < 1 or args.cpu_threads < 0:
        raise UserInputError("--topk, --batch-size and --repeats must be at least 1, --cpu-threads at least 0")
    cores = os.cpu_count() or 1
    if args.cpu_threads > cores:
        raise UserInputError(f"--cpu-threads {args.cpu_threads:,} is more than this machine's {cores} cores")
    if not os.path.isdir(args.model_dir):
        raise UserInputError(f"model folder not found: {args.model_dir}")
    if args.backend == "auto":
        from rdrop_paddle.deploy.predictor import auto_backend

        args.backend = auto_backend(args.model_dir, args.precision, args.device, args.enable_mkldnn)
        print(f"backend: {args.backend} (--backend auto: the fastest installed for {args.precision}; "
              f"--backend paddle|onnxruntime|openvino to choose)")
    make_folder(os.path.dirname(os.path.abspath(args.out)), "the folder of --out", create=False)
    if is_text_folder(args.model_dir):
        return infer_text(args)
    if args.text or args.text_file:
        raise UserInputError(f"{args.model_dir} holds an image model: pass --images, not --text")
    skipped: list[str] = []
    paths = list_images(args.images, skipped)
    if args.precision == "bf16" and args.backend == "paddle" and (args.device != "cpu" or args.enable_mkldnn is False):
        raise UserInputError("--precision bf16 is Paddle Inference's oneDNN on CPU: use it with --device cpu "
                             "and without --enable-mkldnn False")
    predictor = Predictor(args.model_dir, args.device, args.backend, args.cpu_threads or None, args.enable_mkldnn,
                          args.precision)
    results = predictor.predict(paths, args.topk, args.batch_size)
    timing = None
    if args.benchmark:
        from rdrop_paddle.deploy.benchmark import benchmark, report

        timing = benchmark(predictor, paths, args.batch_size, repeats=args.repeats, topk=args.topk)
        threads = args.cpu_threads or (len(os.sched_getaffinity(0)) if args.backend == "paddle" else "default")
        print(report(timing, os.path.basename(os.path.normpath(args.model_dir)), args.backend, threads,
                     args.enable_mkldnn, args.precision))
    make_folder(os.path.dirname(os.path.abspath(args.out)), "the folder of --out")
    replaced = os.path.isfile(args.out)
    write_json({"model_dir": args.model_dir, "predictions": results, **({"benchmark": timing} if timing else {})},
               args.out)
    if skipped:
        from rdrop_paddle.data.entries import named

        print(f"skipped {len(skipped)} hidden or non-image entr{'y' if len(skipped) == 1 else 'ies'}: "
              f"{printable(named(skipped))}")
    print(f"| image | {' | '.join(f'top-{k + 1}' for k in range(min(args.topk, len(results[0]['topk']))))} |")
    print("| --- |" + " --- |" * min(args.topk, len(results[0]["topk"])))
    for r in results:
        cells = " | ".join(f"{printable(t['name'])} ({t['prob']:.3f})" for t in r["topk"])
        print(f"| {printable(os.path.basename(r['image']))} | {cells} |")
    print(f"wrote {printable(args.out)}" + (" (replacing the previous predictions)" if replaced else ""))
