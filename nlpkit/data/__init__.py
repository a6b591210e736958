"""Data: local readers, length-bucketed batching, and the base DataModule."""
