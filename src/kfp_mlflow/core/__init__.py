"""The vocabulary every layer shares: settings (the one reader of the environment), errors,
the typed contracts between steps, MLflow tag names, naming rules, the extension registry.
"""
