"""Sequence encoders: the interface and the core's implementations."""

from nlpkit.encoders.base import Encoder, EncoderFactory

__all__ = ["Encoder", "EncoderFactory"]
