"""Link scorers (registered heads): TransE, DistMult, ComplEx and RotatE.

A scorer owns the relation parameters and the interaction; the task owns the entity representations (free
embeddings, text, or both) and hands them in as real vectors of width ``entity_dim``. Complex-valued models read
them as ``[real parts | imaginary parts]``.

Every model is written as *query, then similarity*: ``score(h, r, t) = similarity(tail_query(h, r), t)`` and
``score(h, r, t) = similarity(head_query(r, t), h)``. Ranking all candidates is one similarity of a batch of queries
against the entity matrix, and negative sampling is the same similarity on aligned pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlpkit import Head

#: candidate chunks keep the (queries, candidates, dim) broadcast of distance scorers under this many floats
BROADCAST_ELEMENTS = 1 << 22


def _split(x: Tensor) -> tuple[Tensor, Tensor]:
    """Real and imaginary halves of ``[re | im]`` vectors."""
    return x.chunk(2, dim=-1)


def _complex_product(a: Tensor, b: Tensor, conjugate_b: bool = False) -> Tensor:
    """``a * b`` (or ``a * conj(b)``) of ``[re | im]`` vectors."""
    a_re, a_im = _split(a)
    b_re, b_im = _split(b)
    if conjugate_b:
        b_im = -b_im
    return torch.cat([a_re * b_re - a_im * b_im, a_re * b_im + a_im * b_re], dim=-1)


class LinkScorer(Head):
    """Base of link scorers; the task injects ``num_relations`` (doubled when it adds inverse relations).

    Subclasses define :meth:`tail_query`, :meth:`head_query`, :meth:`pair_similarity` and, for speed,
    :meth:`similarity` (the default broadcasts :meth:`pair_similarity` over chunks of candidates).

    :param dim: embedding size: real components, or complex components for ComplEx and RotatE
    """

    injected_args: ClassVar[tuple[str, ...]] = ("num_relations",)
    is_complex: ClassVar[bool] = False
    #: the margin added to scores in the negative-sampling loss when the task sets none (distance models need one)
    default_margin: ClassVar[float] = 0.0

    def __init__(self, num_relations: int, dim: int = 64) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.num_relations = num_relations
        self.dim = dim
        self.entity_dim = 2 * dim if self.is_complex else dim
        self.relation_embedding = nn.Embedding(num_relations, self.relation_width())
        self.reset_parameters()

    def relation_width(self) -> int:
        """Width of one relation's parameters."""
        return self.entity_dim

    def reset_parameters(self) -> None:
        """Xavier-uniform relation embeddings."""
        nn.init.xavier_uniform_(self.relation_embedding.weight)

    def initialize_entities(self, weight: Tensor) -> None:
        """Initialise a free entity embedding table ``(num_entities, entity_dim)`` in place: Xavier-uniform."""
        nn.init.xavier_uniform_(weight)

    def prepare(self, entities: Tensor) -> Tensor:
        """Entity representations as the model reads them (TransE normalises them); default: unchanged."""
        return entities

    def relations(self, relation_ids: Tensor) -> Tensor:
        """Relation vectors ``(..., relation_width)``."""
        return self.relation_embedding(relation_ids)

    def tail_query(self, heads: Tensor, relation_ids: Tensor) -> Tensor:
        """The vector the true tail should be most similar to, for heads ``(B, D)`` and relations ``(B,)``."""
        raise NotImplementedError

    def head_query(self, relation_ids: Tensor, tails: Tensor) -> Tensor:
        """The vector the true head should be most similar to, for relations ``(B,)`` and tails ``(B, D)``."""
        raise NotImplementedError

    def pair_similarity(self, queries: Tensor, candidates: Tensor) -> Tensor:
        """Scores of aligned (broadcastable) pairs: ``(..., D)`` and ``(..., D)`` -> ``(...)``."""
        raise NotImplementedError

    def similarity(self, queries: Tensor, candidates: Tensor) -> Tensor:
        """Scores of every query ``(B, D)`` against every candidate ``(N, D)``: ``(B, N)``."""
        step = max(1, BROADCAST_ELEMENTS // max(1, len(queries) * queries.shape[-1]))
        chunks = [candidates[i : i + step] for i in range(0, len(candidates), step)]
        return torch.cat([self.pair_similarity(queries[:, None], chunk[None]) for chunk in chunks], dim=1)

    def forward(self, heads: Tensor, relation_ids: Tensor, tails: Tensor) -> Tensor:
        """Scores of triples: heads ``(B, D)``, relations ``(B,)``, tails ``(B, [K,] D)`` -> ``(B[, K])``."""
        query = self.tail_query(heads, relation_ids)
        return self.pair_similarity(query if tails.dim() == 2 else query[:, None], tails)


class TransE(LinkScorer):
    """TransE (Bordes et al., 2013): ``-||h + r - t||_p``, entities normalised to unit length.

    :param p: the norm, 1 or 2
    :param normalize_entities: project entity vectors onto the unit sphere before scoring
    """

    default_margin = 6.0

    def __init__(
        self, num_relations: int, dim: int = 64, p: Literal[1, 2] = 1, normalize_entities: bool = True
    ) -> None:
        super().__init__(num_relations, dim)
        self.p = p
        self.normalize_entities = normalize_entities

    def reset_parameters(self) -> None:
        """Xavier-uniform relation vectors scaled to unit length (as in the paper)."""
        super().reset_parameters()
        with torch.no_grad():
            self.relation_embedding.weight.copy_(F.normalize(self.relation_embedding.weight, dim=-1))

    def initialize_entities(self, weight: Tensor) -> None:
        """Xavier-uniform, then unit length: the sphere the scores read them on, so steps are to scale."""
        super().initialize_entities(weight)
        with torch.no_grad():
            weight.copy_(F.normalize(weight, dim=-1))

    def prepare(self, entities: Tensor) -> Tensor:
        """Unit-length entity vectors (when ``normalize_entities``)."""
        return F.normalize(entities, p=2, dim=-1) if self.normalize_entities else entities

    def tail_query(self, heads: Tensor, relation_ids: Tensor) -> Tensor:
        """``h + r``."""
        return heads + self.relations(relation_ids)

    def head_query(self, relation_ids: Tensor, tails: Tensor) -> Tensor:
        """``t - r``."""
        return tails - self.relations(relation_ids)

    def pair_similarity(self, queries: Tensor, candidates: Tensor) -> Tensor:
        """``-||q - e||_p``."""
        return -torch.linalg.vector_norm(queries - candidates, ord=self.p, dim=-1)

    def similarity(self, queries: Tensor, candidates: Tensor) -> Tensor:
        """``-cdist(q, e)``, without the broadcast (broadcast in an ONNX export, where cdist's lowering gives NaN)."""
        if torch.onnx.is_in_onnx_export():
            return super().similarity(queries, candidates)
        return -torch.cdist(queries, candidates, p=float(self.p))


class DistMult(LinkScorer):
    """DistMult (Yang et al., 2015): ``<h, r, t>``; symmetric, so it cannot model antisymmetric relations."""

    def tail_query(self, heads: Tensor, relation_ids: Tensor) -> Tensor:
        """``h * r``."""
        return heads * self.relations(relation_ids)

    def head_query(self, relation_ids: Tensor, tails: Tensor) -> Tensor:
        """``r * t``."""
        return self.relations(relation_ids) * tails

    def pair_similarity(self, queries: Tensor, candidates: Tensor) -> Tensor:
        """``<q, e>``."""
        return (queries * candidates).sum(dim=-1)

    def similarity(self, queries: Tensor, candidates: Tensor) -> Tensor:
        """One matrix product."""
        return queries @ candidates.T


class ComplEx(DistMult):
    """ComplEx (Trouillon et al., 2016): ``Re(<h, r, conj(t)>)`` over complex vectors; models antisymmetry."""

    is_complex = True

    def tail_query(self, heads: Tensor, relation_ids: Tensor) -> Tensor:
        """``h * r``, so the score is ``Re(<q, conj(t)>)``: a real dot product of ``[re | im]`` vectors."""
        return _complex_product(heads, self.relations(relation_ids))

    def head_query(self, relation_ids: Tensor, tails: Tensor) -> Tensor:
        """``conj(r) * t``, since ``Re(h r conj(t)) = Re(<h, conj(conj(r) t)>)``."""
        return _complex_product(tails, self.relations(relation_ids), conjugate_b=True)


class RotatE(LinkScorer):
    """RotatE (Sun et al., 2019): ``-||h o r - t||`` with ``|r_i| = 1`` (a rotation per complex component).

    The distance is the sum of the components' moduli, as in the paper. Relations are phases in ``[-pi, pi)``.
    """

    is_complex = True
    default_margin = 6.0

    def relation_width(self) -> int:
        """One phase per complex component."""
        return self.dim

    def reset_parameters(self) -> None:
        """Uniform phases."""
        nn.init.uniform_(self.relation_embedding.weight, -math.pi, math.pi)

    def relations(self, relation_ids: Tensor) -> Tensor:
        """Unit complex numbers ``[cos | sin]`` of the phases."""
        phase = self.relation_embedding(relation_ids)
        return torch.cat([phase.cos(), phase.sin()], dim=-1)

    def tail_query(self, heads: Tensor, relation_ids: Tensor) -> Tensor:
        """``h o r``."""
        return _complex_product(heads, self.relations(relation_ids))

    def head_query(self, relation_ids: Tensor, tails: Tensor) -> Tensor:
        """``t o conj(r)``: a rotation back, since ``|h o r - t| = |h - t o conj(r)|`` when ``|r| = 1``."""
        return _complex_product(tails, self.relations(relation_ids), conjugate_b=True)

    def pair_similarity(self, queries: Tensor, candidates: Tensor) -> Tensor:
        """``-sum_i |q_i - e_i|`` over complex components."""
        re, im = _split(queries - candidates)
        return -torch.sqrt(re.square() + im.square() + 1e-12).sum(dim=-1)


#: What the task receives for its head: something that builds a LinkScorer given the number of relations.
LinkScorerFactory = Callable[[int], LinkScorer]
