"""Model families and their backends (scikit-learn, Spark), saving and publishing a trained
model (safe serialization), metrics, reproduction recipes, ONNX export.
"""
