"""HeLo (Zheng et al., ACM MM 2025) for heloflow: model, data loaders, training, metrics, ONNX export."""
