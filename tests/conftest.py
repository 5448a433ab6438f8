"""Test setup: the CPU environment is configured before paddle loads, as the tools do."""
from rdrop_paddle.cpu import configure

configure("cpu")
