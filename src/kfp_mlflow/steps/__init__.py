"""Business logic of each pipeline step, as plain typed functions (no kfp import)."""
