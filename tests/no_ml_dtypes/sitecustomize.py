"""Test support: with this folder on PYTHONPATH, ``import ml_dtypes`` fails as it does where the
package is not installed (ONNX Runtime's quantisation imports it)."""
import sys

sys.modules["ml_dtypes"] = None
