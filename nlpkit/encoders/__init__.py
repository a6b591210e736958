"""Sequence encoders: the interface and the core's implementations (imported on first use)."""

from nlpkit.encoders.base import Encoder, EncoderFactory, LanguageModelHeadMixin

__all__ = ["Encoder", "EncoderFactory", "LanguageModelHeadMixin"]
