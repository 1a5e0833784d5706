"""Using a trained generator: running it (inference.py: loading, inputs, padded batches), writing samples
(sampling.py) as files people open (media.py: GIF, MP4, PNG, grids), exporting it (export.py: symbol +
params, ONNX, an MMS archive) and importing the original's Torch7 checkpoints (torch_import.py)."""
