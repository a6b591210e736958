"""Language embeddings: a learned vector per language, added to every token embedding of that language's texts.

A text's language is read from its ``<lang:xx>`` token (the multilingual plugin starts every text with one), so
this works with any encoder: a hook on the encoder's token embedding adds the vector, no encoder changes.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor, nn

from nlpkit.errors import ConfigError
from nlpkit.tokenization import Tokenizer

LANGUAGE_TOKEN = re.compile(r"<lang:[^>]+>")


class LanguageEmbeddings(nn.Module):
    """One learned vector per ``<lang:xx>`` token of the vocabulary, added at every position of a text holding it.

    Texts without a language token get nothing added. Incremental decoding does not see the token in later
    chunks, so tasks that decode step by step refuse this option.
    """

    def __init__(self, tokenizer: Tokenizer, token_embedding: nn.Embedding) -> None:
        super().__init__()
        ids = [i for i, piece in enumerate(tokenizer.vocabulary()) if LANGUAGE_TOKEN.fullmatch(piece)]
        if not ids:
            raise ConfigError("language_embeddings needs <lang:xx> tokens in the tokenizer (use multilingual data)")
        language_of_token = torch.full((tokenizer.vocab_size,), -1, dtype=torch.long)
        language_of_token[torch.tensor(ids)] = torch.arange(len(ids))
        self.register_buffer("language_of_token", language_of_token, persistent=False)
        self.embedding = nn.Embedding(len(ids), token_embedding.embedding_dim)
        nn.init.normal_(self.embedding.weight, std=0.02)
        token_embedding.register_forward_hook(self._add)

    def _add(self, module: nn.Module, inputs: tuple[Any, ...], output: Tensor) -> Tensor:
        languages = self.language_of_token[inputs[0]].amax(dim=1)  # (B,): the row's language, -1 if none
        vectors = self.embedding(languages.clamp(min=0)) * (languages >= 0)[:, None]  # (B, D)
        return output + vectors[:, None, :].to(output.dtype)
