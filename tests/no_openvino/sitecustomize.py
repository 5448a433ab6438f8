"""Test support: with this folder on PYTHONPATH, ``import openvino`` fails as it does where the
package is not installed (the README install has none of the optional backends)."""
import sys

sys.modules["openvino"] = None
