"""The extra model files some rows of ``infer_backends.py`` time: a fused ONNX graph and the
int8 models of ONNX Runtime, OpenVINO and Paddle, made from the exported folder."""
import os
import traceback


def ort_fused(folder: str, hidden: int, heads: int) -> None:
    """``fused.onnx``: transformers' ONNX Runtime optimizer (fused attention, LayerNorm, GELU)."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimize_model(os.path.join(folder, "inference.onnx"), model_type="vit", num_heads=heads,
                   hidden_size=hidden, opt_level=1).save_model_to_file(os.path.join(folder, "fused.onnx"))


def paddle_int8(folder: str, calib: list) -> str:
    """Paddle's own int8: ``paddle.static.quantization.PostTrainingQuantization`` (PaddleSlim's
    ``quant_post_static`` is a wrapper of it) on the exported program; the row says how it ends."""
    import paddle
    from paddle.static.quantization import PostTrainingQuantization

    from rdrop_paddle.deploy.folder import model_files

    model, params = model_files(folder)
    paddle.enable_static()
    try:
        ptq = PostTrainingQuantization(
            executor=paddle.static.Executor(paddle.CPUPlace()), model_dir=folder,
            model_filename=os.path.basename(model), params_filename=os.path.basename(params),
            data_loader=lambda: ([c] for c in calib), batch_nums=len(calib), algo="avg", onnx_format=True,
            quantizable_op_type=["matmul", "matmul_v2", "mul"])
        ptq.quantize()
    except Exception as e:  # noqa: BLE001  (the row reports whatever stops it)
        where = traceback.extract_tb(e.__traceback__)[-1]
        return (f"does not run on Paddle {paddle.__version__}'s exported program ({type(e).__name__} in "
                f"{os.path.basename(where.filename)}:{where.lineno} {where.name})")
    finally:
        paddle.disable_static()
    return "quantised, but this benchmark has no Paddle Inference int8 session to time it"


def ort_int8(folder: str, calib: list) -> None:
    """``int8_static.onnx``: ONNX Runtime's static QDQ quantisation, calibrated on ``calib``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter({"x": c} for c in calib)

        def get_next(self):
            return next(self.items, None)

    quantize_static(os.path.join(folder, "inference.onnx"), os.path.join(folder, "int8_static.onnx"), Reader(),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)


def openvino_int8(folder: str, calib: list) -> None:
    """OpenVINO int8 through NNCF, as ``tools/export_model.py --precision int8`` writes it."""
    from rdrop_paddle.deploy.quantize import check_int8_export, quantize_openvino

    check_int8_export(folder)
    quantize_openvino(folder, calib)
