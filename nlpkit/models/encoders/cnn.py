"""A convolutional encoder (Kim, 2014): 1-D convolutions of several widths side by side over the token embeddings.
Under a task's max pooling it is the classic CNN text classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlpkit.models.encoders.base import Encoder, token_embedding
from nlpkit.models.vectors import WordVectorsOptions
from nlpkit.plugin.errors import ConfigError


def _same(x: Tensor, convolution: nn.Conv1d) -> Tensor:
    """``x`` (B, E, T) zero-padded so ``convolution`` keeps T positions; an even width's extra zero goes right."""
    width = convolution.kernel_size[0]
    return F.pad(x, ((width - 1) // 2, width // 2))


class CNNEncoder(Encoder):
    """Token embedding and dropout, then one convolution of ``num_filters`` channels for each width in
    ``kernel_sizes`` (zero padding keeping the length, ReLU), concatenated: ``output_dim`` is
    ``num_filters * len(kernel_sizes)``.

    Padded positions are zeroed before the convolutions, so every real token sees the same zeros past its
    sequence's ends as it would alone: padding never changes an output.

    :param embedding_dim: width of the token embeddings
    :param num_filters: output channels of each convolution
    :param kernel_sizes: the window, in tokens, of each convolution
    :param dropout: dropout on the embeddings
    :param embeddings: start the token embedding from word vectors (``{path, format, freeze}``: Kim's static or
        fine-tuned word vectors)
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 128,
        num_filters: int = 100,
        kernel_sizes: list[int] | None = None,
        dropout: float = 0.0,
        embeddings: WordVectorsOptions | None = None,
        feature_dim: int = 0,
    ) -> None:
        super().__init__()
        kernel_sizes = kernel_sizes or [3, 4, 5]
        if any(size < 1 for size in kernel_sizes) or num_filters < 1:
            raise ConfigError(f"cnn needs positive kernel_sizes and num_filters, got {kernel_sizes}, {num_filters}")
        self.vocab_size = vocab_size
        self.output_dim = num_filters * len(kernel_sizes)
        self.token_embedding = token_embedding(vocab_size, embedding_dim, embeddings)
        self.feature_dim = feature_dim
        self.dropout = nn.Dropout(dropout)
        width = embedding_dim + feature_dim
        self.convolutions = nn.ModuleList(nn.Conv1d(width, num_filters, size) for size in kernel_sizes)

    def forward(self, tokens: Tensor, mask: Tensor, features: Tensor | None = None) -> Tensor:
        """Encode a padded batch: ``tokens`` (B, T) long, ``mask`` (B, T) bool, ``features`` (B, T, feature_dim)
        -> (B, T, output_dim)."""
        x = self.dropout(self.beside_features(self.token_embedding(tokens), features))
        x = x.masked_fill(~mask[..., None], 0.0)  # (B, T, E + F)
        x = x.transpose(1, 2)  # (B, E, T): channels first for Conv1d
        features = torch.cat([F.relu(convolution(_same(x, convolution))) for convolution in self.convolutions], 1)
        return features.transpose(1, 2).masked_fill(~mask[..., None], 0.0)  # (B, H, T) -> (B, T, H)

    def layers(self) -> list[list[str]]:
        """The embedding, then the convolutions (side by side: one layer)."""
        return [
            ["token_embedding.weight"],
            [name for name, _ in self.convolutions.named_parameters(prefix="convolutions")],
        ]
