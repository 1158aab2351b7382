"""A deterministic stand-in for a decoder-only language model.

The "hidden state" after a token is a 61-bit integer that depends on every token before it, just as a
transformer's KV cache does, so a cached state is only valid for exactly the prefix that produced it.
Running the model over a span of tokens costs time proportional to the span, which makes prefill and
decode behave like their real counterparts at toy scale.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

PRIME = (1 << 61) - 1
MULTIPLIER = 0x9E3779B97F4A7C15 % PRIME
INITIAL_STATE = 0x2545F4914F6CDD1D % PRIME


class ToyModel:
    """Embeds tokens as random integers and folds them into a running state."""

    def __init__(self, vocab_size: int, seed: int = 0, num_special: int = 3) -> None:
        rng = random.Random(seed)
        self.vocab_size = vocab_size
        self.num_special = num_special
        self.embedding = [rng.getrandbits(61) for _ in range(vocab_size)]

    def forward(self, token_ids: Sequence[int], state: int = INITIAL_STATE) -> int:
        """The state after feeding ``token_ids`` to a model that is in ``state``."""
        embedding = self.embedding
        for token_id in token_ids:
            state = (state * MULTIPLIER + embedding[token_id]) % PRIME
        return state

    def next_token(self, state: int, eos_id: int | None = None) -> int:
        """Greedy choice of the next token in ``state``; ``eos_id`` when the model wants to stop."""
        mixed = _mix(state)
        if eos_id is not None and mixed % 97 == 0:
            return eos_id
        return self.num_special + mixed % (self.vocab_size - self.num_special)

    def top_tokens(self, state: int, k: int, eos_id: int | None = None) -> list[tuple[int, float]]:
        """The ``k`` most likely next tokens in ``state`` with their log-probabilities, most likely first.

        The first is always ``next_token``'s greedy choice; the runners-up trail it by at least 0.5 nats.
        """
        best = self.next_token(state, eos_id)
        mixed = _mix(state)
        span = self.vocab_size - self.num_special
        top = [(best, -0.05 - (mixed % 1000) / 10000)]
        salt = mixed
        while len(top) < k:
            salt = _mix(salt + len(top))
            candidate = self.num_special + salt % span
            if all(candidate != token for token, _ in top):
                top.append((candidate, top[-1][1] - 0.5 - (salt % 1000) / 1000))
        return top


def _mix(value: int) -> int:
    """A well-spread deterministic function of a state."""
    return (value ^ (value >> 29)) * 0xBF58476D1CE4E5B9 % PRIME
