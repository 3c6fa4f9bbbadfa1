"""Model artifacts: the format (`format`), one module per kind holding its builder and its
loader (`python`, `sklearn`, `pytorch`, `onnx`, `xgboost`, `lightgbm`), and `loader`,
which loads an artifact directory by its kind in a worker.

Builders run where a model is deployed, loaders in the worker process: a kind module
imports its framework only inside its functions, and nothing here imports the server.
"""
