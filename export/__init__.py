"""reid-stream export: trained embedders to ONNX / TensorRT model bundles."""
