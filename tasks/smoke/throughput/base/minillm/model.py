"""A deterministic stand-in for a decoder-only language model with a byte-fallback vocabulary.

The model folds every token it sees into a 61-bit state (the analogue of the KV cache) and derives the
next token from that state. Its output imitates a real model's: mostly word pieces, some suffixes and
punctuation, and now and then a non-ASCII character spelled as its UTF-8 bytes over several steps.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from minillm.tokenizer import BYTE_OFFSET, EOS_ID, FIRST_PIECE_ID

PRIME = (1 << 61) - 1
MULTIPLIER = 0x9E3779B97F4A7C15 % PRIME
INITIAL_STATE = 0x2545F4914F6CDD1D % PRIME

# Characters the model spells with byte tokens, and a byte no UTF-8 text contains (a model can emit it).
_NON_ASCII = ("é", "ü", "ñ", "ß", "—", "€", "“", "”", "…", "中", "文", "😀", "🚀", "🙂")
_STRAY_BYTE = 0xFF


class ModelState:
    """What the model remembers about one sequence."""

    __slots__ = ("hidden", "pending")

    def __init__(self, hidden: int = INITIAL_STATE) -> None:
        self.hidden = hidden
        self.pending: tuple[int, ...] = ()  # byte tokens still to emit for a multi-byte character


class ToyModel:
    """Greedy next-token generation over a tokenizer's vocabulary."""

    def __init__(self, vocab_size: int, num_suffix_pieces: int, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.vocab_size = vocab_size
        self.embedding = [rng.getrandbits(61) for _ in range(vocab_size)]
        self.num_suffixes = num_suffix_pieces
        self.first_word = FIRST_PIECE_ID
        self.num_words = vocab_size - FIRST_PIECE_ID - num_suffix_pieces
        self.char_bytes = [tuple(BYTE_OFFSET + b for b in ch.encode()) for ch in _NON_ASCII]

    def prefill(self, token_ids: Sequence[int]) -> ModelState:
        """The state after reading a prompt."""
        embedding = self.embedding
        hidden = INITIAL_STATE
        for token_id in token_ids:
            hidden = (hidden * MULTIPLIER + embedding[token_id]) % PRIME
        return ModelState(hidden)

    def decode(self, states: Sequence[ModelState], ignore_eos: Sequence[bool]) -> list[int]:
        """One decode step for a batch: the next token of every sequence (states are advanced)."""
        embedding = self.embedding
        out = []
        for state, no_eos in zip(states, ignore_eos, strict=True):
            hidden = state.hidden
            if state.pending:
                token_id = state.pending[0]
                state.pending = state.pending[1:]
            else:
                mixed = (hidden ^ (hidden >> 31)) * 0xBF58476D1CE4E5B9 % PRIME
                roll = mixed % 1024
                if roll == 0 and not no_eos:
                    token_id = EOS_ID
                elif roll < 3:
                    token_id = BYTE_OFFSET + _STRAY_BYTE
                elif roll < 24:
                    spelled = self.char_bytes[(mixed >> 10) % len(self.char_bytes)]
                    token_id, state.pending = spelled[0], spelled[1:]
                elif roll < 200:
                    token_id = self.vocab_size - self.num_suffixes + (mixed >> 10) % self.num_suffixes
                else:
                    token_id = self.first_word + (mixed >> 10) % self.num_words
            state.hidden = (hidden * MULTIPLIER + embedding[token_id]) % PRIME
            out.append(token_id)
        return out
