"""A deterministic stand-in for a decoder-only language model.

The model keeps a 61-bit running state per sequence (the analogue of its KV cache). At every decode
step it turns the state into a small hidden vector and applies an "LM head": one logit per vocabulary
entry, computed from a learned prior and two projection rows. The head's cost is linear in the
vocabulary size, like a real model's final matmul. Weights are low-precision, so equal logits happen.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

PRIME = (1 << 61) - 1
MULTIPLIER = 0x9E3779B97F4A7C15 % PRIME
INITIAL_STATE = 0x2545F4914F6CDD1D % PRIME


def _quantise(x: float) -> float:
    return round(x * 16.0) / 16.0


class ToyLM:
    """Logits over a vocabulary of ``vocab_size`` tokens."""

    def __init__(self, vocab_size: int, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.vocab_size = vocab_size
        self.embedding = [rng.getrandbits(61) for _ in range(vocab_size)]
        # A Zipf-like prior (low token ids are common words, high ids are rare) and the head's weights,
        # stored at low precision as a quantised checkpoint would be: multiples of 1/16.
        self.prior = [_quantise(-0.9 * (i + 1) ** 0.25 + rng.gauss(0.0, 0.5)) for i in range(vocab_size)]
        self.head_a = [_quantise(rng.gauss(0.0, 1.0)) for _ in range(vocab_size)]
        self.head_b = [_quantise(rng.gauss(0.0, 1.0)) for _ in range(vocab_size)]

    def prefill(self, token_ids: Sequence[int]) -> int:
        """The state after reading a prompt."""
        embedding = self.embedding
        state = INITIAL_STATE
        for token_id in token_ids:
            state = (state * MULTIPLIER + embedding[token_id]) % PRIME
        return state

    def append(self, state: int, token_id: int) -> int:
        """The state after one more token."""
        return (state * MULTIPLIER + self.embedding[token_id]) % PRIME

    def logits(self, state: int) -> list[float]:
        """Next-token logits in ``state``."""
        mixed = (state ^ (state >> 29)) * 0xBF58476D1CE4E5B9 % PRIME
        a = ((mixed & 0xFF) - 128) / 32.0
        b = (((mixed >> 8) & 0xFF) - 128) / 32.0
        return [p + a * u + b * v for p, u, v in zip(self.prior, self.head_a, self.head_b, strict=True)]
