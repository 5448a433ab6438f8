"""Typed config: YAML + overrides, type and key errors."""
import os
import re

import pytest
import yaml

from rdrop_paddle.config import Config, load_config, parse_override, save_config
from rdrop_paddle.errors import UserInputError


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_yaml_12_scalars_and_text_overrides(tmp_path):
    """off/yes stay text (YAML 1.2), 1e-3 is a float, a text override is taken as written."""
    path = write(tmp_path, "Global:\n  amp: off\n  output_dir: yes\nOptimizer:\n  lr: 1e-3\n")
    cfg = load_config(path, ["Data.root=~/data/cifar", "Model.proj_dropout=null"])
    assert cfg.Global.amp == "off" and cfg.Global.output_dir == "yes"
    assert cfg.Optimizer.lr == pytest.approx(1e-3)
    assert cfg.Data.root == os.path.expanduser("~/data/cifar") and not cfg.Data.root.startswith("~")
    assert cfg.Model.proj_dropout is None
    assert load_config(None, ["Global.output_dir=yes"]).Global.output_dir == "yes"
    assert load_config(None, ["Global.output_dir=2024"]).Global.output_dir == "2024"
    assert load_config(None, ["Model.proj_dropout=0.1"]).Model.proj_dropout == 0.1


def test_yaml_then_overrides_as_yaml_scalars(tmp_path):
    path = write(tmp_path, "Global:\n  max_steps: 7\nLoss:\n  alpha: 1\n")
    cfg = load_config(path, ["Loss.alpha=0", "Loss.mode=twice", "Model.pretrained=a/b.pdparams",
                             "Global.max_steps=3", "Optimizer.lr=1e-3"])
    assert cfg.Global.max_steps == 3
    assert cfg.Loss.alpha == 0.0 and isinstance(cfg.Loss.alpha, float)
    assert cfg.Loss.mode == "twice"
    assert cfg.Model.pretrained == "a/b.pdparams"
    assert cfg.Optimizer.lr == pytest.approx(1e-3)


def test_later_override_wins():
    cfg = load_config(None, ["Global.seed=1", "Global.seed=5"])
    assert cfg.Global.seed == 5


@pytest.mark.parametrize("override,needle", [
    ("Global.max_steps=ten", "Global.max_steps: expected int, got str"),
    ("Global.seed=1.5", "expected int, got float"),
    ("Global.seed=true", "expected int, got bool"),
    ("Loss.mode=thrice", "'thrice' is not one of concat, twice"),
    ("Global.max_steps=0", "Global.max_steps must be positive"),
    ("Global.seed=-1", "Global.seed must be in [0, 2**63)"),
    ("Global.seed=9223372036854775808", "Global.seed must be in [0, 2**63)"),
    ("Loss.alpha=.nan", "Loss.alpha must be a finite number >= 0, got nan"),
    ("Optimizer.lr=.nan", "Optimizer.lr must be a finite number > 0"),
    ("Optimizer.lr=.inf", "Optimizer.lr must be a finite number > 0"),
    ("Optimizer.lr=-0.1", "Optimizer.lr must be a finite number > 0"),
    ("Optimizer.grad_clip=-1", "Optimizer.grad_clip must be a finite number >= 0"),
    ("Optimizer.warmup_steps=-5", "Optimizer.warmup_steps must be >= 0"),
    ("Model.dropout=1.5", "Model.dropout must be in [0, 1)"),
    ("Model.proj_dropout=1", "Model.proj_dropout must be in [0, 1)"),
    ("Data.num_workers=-1", "Data.num_workers must be >= 0"),
    ("Global.output_dir=", "Global.output_dir must not be empty"),
])
def test_type_and_value_errors_name_the_key(override, needle):
    with pytest.raises(UserInputError, match=re.escape(needle)):
        load_config(None, [override])


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(UserInputError) as e:
        load_config(write(tmp_path, "Loss:\n  alpah: 0.3\n"))
    assert "Loss.alpah" in str(e.value) and "alpha, mode, convention" in str(e.value)
    with pytest.raises(UserInputError, match="unknown section 'Train'.*Global, Model"):
        load_config(None, ["Train.epochs=3"])


@pytest.mark.parametrize("text", ["Global.max_steps", "max_steps=3", "Global.=3", "A.b.c=1"])
def test_malformed_override(text):
    with pytest.raises(UserInputError, match="malformed override"):
        parse_override(text)


def test_output_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserInputError, match="is a file, not a folder"):
        load_config(None, [f"Global.output_dir={tmp_path / 'f'}"])


def test_bad_files(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("Global:\n  output_dir: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserInputError, match="latin.yaml: not UTF-8 text"):
        load_config(str(latin))
    with pytest.raises(UserInputError, match="config file not found: .*nope.yaml"):
        load_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(UserInputError, match="not valid YAML"):
        load_config(write(tmp_path, "Global: [unclosed\n"))
    with pytest.raises(UserInputError, match="section Global must be a mapping"):
        load_config(write(tmp_path, "Global: 3\n"))


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["Loss.alpha=0.7", "Data.name=cifar100"])
    out = tmp_path / "config.yaml"
    save_config(cfg, str(out))
    assert load_config(str(out)) == cfg
    assert set(yaml.safe_load(out.read_text())) == {"Global", "Model", "Loss", "Optimizer", "Data"}


def test_shipped_configs_load():
    root = os.path.join(os.path.dirname(__file__), "..", "configs")
    for name in sorted(os.listdir(root)):
        assert isinstance(load_config(os.path.join(root, name)), Config)


def test_paddleclas_runner_keys(tmp_path):
    """What PaddleClas's TIPC runner appends: AMP.use_amp/level onto Global.amp/amp_level; its
    fp16 extras refused in one message; Global.model_subdir lays the run out as PaddleClas does."""
    path = write(tmp_path, "Global:\n  amp: bf16\n  device: gpu\n  output_dir: out\nModel:\n  name: vit_tiny_patch16_224\n")
    assert load_config(path, ["AMP.use_amp=False"]).Global.amp == "off"
    cfg = load_config(path, ["AMP.use_amp=True", "AMP.level=O2"])
    assert (cfg.Global.amp, cfg.Global.amp_level) == ("fp16", "O2")
    for bad in ("AMP.scale_loss=128", "AMP.use_amp=maybe"):
        with pytest.raises(UserInputError, match="only use_amp .True or False. and level are understood"):
            load_config(path, [bad])
    cfg = load_config(path, ["Global.model_subdir=true", "Global.print_mem_info=True"])
    assert cfg.Global.output_dir == os.path.join("out", "vit_tiny_patch16_224") and cfg.Global.print_mem_info
    saved = str(tmp_path / "saved.yaml")
    save_config(cfg, saved)  # resolved once: the run's config.yaml reads back to the same folder
    assert load_config(saved).Global.output_dir == cfg.Global.output_dir


def test_print_mem_info_adds_the_peak_resident_set_to_each_training_line(tmp_path):
    from helpers import train_ok

    train_ok("-c", "configs/quickstart.yaml", "-o", "Global.max_steps=2", "-o", "Global.log_every=1",
             "-o", f"Global.output_dir={tmp_path / 'run'}", "-o", "Global.print_mem_info=True")
    lines = [line for line in (tmp_path / "run" / "train.log").read_text().splitlines() if "[Train]" in line]
    peaks = [int(line.split("max_rss: ")[1].split(" MB")[0]) for line in lines]
    assert len(peaks) == 2 and peaks[0] <= peaks[1] and 100 < peaks[1] < 24 * 1024  # Paddle alone is > 100 MB
