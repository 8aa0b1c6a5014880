"""Using registered versions: the scoring server, batch scoring, streaming micro-batches."""
