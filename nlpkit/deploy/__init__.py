"""Deployment: loading a trained task, exporting it (ONNX, TorchScript), the runtimes that run an export and the
HTTP server."""
