"""Deployment: export for Paddle Inference and ONNX (:mod:`.export`, :mod:`.onnx`), the exported
folder and its ``infer_cfg.json`` (:mod:`.folder`), PaddleClas's predictor files
(:mod:`.paddleclas`), prediction on image files (:mod:`.predictor`) and its timing
(:mod:`.benchmark`).  Importing this package imports no paddle; its modules do."""
