"""Sequence encoders: the interface and the core's implementations."""
