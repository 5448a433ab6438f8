"""Typed YAML configuration: the schema (:mod:`.schema`), its range and cross-field checks
(:mod:`.checks`), and reading a file with ``-o Section.key=value`` overrides (:mod:`.load`)."""
from rdrop_paddle.config.load import load_config, parse_override, save_config
from rdrop_paddle.config.schema import (PER_NODE_KEYS, RESUME_KEYS, Config, DataConfig, GlobalConfig, LossConfig,
                                        ModelConfig, OptimizerConfig, resume_differences)

__all__ = ["Config", "GlobalConfig", "ModelConfig", "LossConfig", "OptimizerConfig", "DataConfig",
           "load_config", "save_config", "parse_override", "resume_differences", "RESUME_KEYS", "PER_NODE_KEYS"]
