"""Issue 46 item 3: AMP training on CPU is refused in one line, for the reason measured here —
Paddle's CPU build has no bf16 (or fp16) matmul kernel in dygraph, so autocast leaves a Linear
in fp32.  The second test pins that fact of the installed Paddle: when it fails, Paddle has
gained the kernels and ``Global.amp`` on CPU is worth building (docs/training.md)."""
import paddle
import pytest

from helpers import one_error_line, run_tool


def test_amp_on_cpu_is_one_line_naming_the_reason(tmp_path):
    res = run_tool("tools/train.py", "-c", "configs/quickstart.yaml", "-o", "Global.amp=bf16",
                   "-o", f"Global.output_dir={tmp_path / 'run'}")
    line = one_error_line(res)
    assert "Global.amp bf16 needs Global.device gpu: Paddle's CPU build has no bf16 matmul kernel" in line
    assert ("this CPU has native bf16" in line) != ("nor has this CPU native bf16" in line)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_paddles_cpu_build_has_no_low_precision_matmul(dtype):
    paddle.set_device("cpu")
    layer, x = paddle.nn.Linear(8, 8), paddle.randn([4, 8])
    with paddle.amp.auto_cast(True, level="O1", dtype=dtype):
        assert layer(x).dtype == paddle.float32  # autocast changed nothing
    with pytest.raises(RuntimeError, match=f"kernel `matmul` is not registered|{dtype}"):
        paddle.matmul(x.astype(dtype), x.astype(dtype).T)
