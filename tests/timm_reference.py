"""timm's own Mixup, RandAugment and RandomErasing code as the reference, loaded file by file:
``import timm`` would import torchvision, which the tests do not install (timm is installed
with ``--no-deps``; these three files need only NumPy, PIL and torch)."""
import importlib.util
import os


def timm_module(name: str):
    """``timm/data/{name}.py`` as a stand-alone module."""
    spec = importlib.util.find_spec("timm")
    assert spec is not None and spec.submodule_search_locations, "timm is not installed (tests/requirements-nodeps.txt)"
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", f"{name}.py")
    module_spec = importlib.util.spec_from_file_location(f"timm_reference_{name}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module
