"""Test support: with this folder on PYTHONPATH and RDROP_TEST_SETUP_DELAY=S, the data sets
of a process take S seconds longer to open (a node whose shared storage is slow)."""
import importlib.abc
import importlib.util
import os
import sys
import time

_DELAY = float(os.environ.get("RDROP_TEST_SETUP_DELAY", "0"))


class _SlowData(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "rdrop_paddle.data" or not _DELAY:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            build = module.build_datasets

            def slow(*args, **kwargs):
                time.sleep(_DELAY)
                return build(*args, **kwargs)

            module.build_datasets = slow

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _SlowData())
