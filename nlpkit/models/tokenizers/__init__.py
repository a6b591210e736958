"""Tokenizers: the interface (:mod:`.base`) and its backends, which register themselves with it as this package
imports them, so :meth:`Tokenizer.load` and :meth:`Tokenizer.train` always find both."""

from nlpkit.models.tokenizers import huggingface, sentencepiece
from nlpkit.models.tokenizers.base import Tokenizer, TokenizerOptions

__all__ = ["Tokenizer", "TokenizerOptions", "huggingface", "sentencepiece"]
