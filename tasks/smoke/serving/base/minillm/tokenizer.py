"""A word-level tokenizer with a synthetic, deterministic vocabulary.

Token ids below ``NUM_SPECIAL`` are reserved. Every other id maps to a pronounceable pseudo-word built
from syllables, so decoded output is readable. Words outside the vocabulary are mapped onto it with a
stable checksum, which keeps encoding total and identical across processes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

BOS_ID = 1
EOS_ID = 2
NUM_SPECIAL = 3

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh")
_NUCLEI = ("a", "e", "i", "o", "u", "ai", "ou", "ea")


def _syllables() -> list[str]:
    return [onset + nucleus for onset in _ONSETS for nucleus in _NUCLEI]


class WordTokenizer:
    """Splits on whitespace; one word is one token.

    The vocabulary is every two-syllable word (in a fixed shuffled order) plus the special tokens.
    """

    def __init__(self) -> None:
        syllables = _syllables()
        n = len(syllables)
        words = ["<unk>", "<s>", "</s>"]
        for index in range(n * n):
            # A multiplier coprime to n*n visits every combination once, in a scattered order.
            first, second = divmod(index * 7919 % (n * n), n)
            words.append(syllables[first] + syllables[second])
        self.vocab_size = len(words)
        self.id_to_word = words
        self.word_to_id = {word: i for i, word in enumerate(words)}

    def encode(self, text: str) -> list[int]:
        """Token ids for ``text``; unknown words are hashed onto the regular vocabulary."""
        lookup = self.word_to_id.get
        span = self.vocab_size - NUM_SPECIAL
        return [lookup(word) or NUM_SPECIAL + zlib.crc32(word.encode()) % span for word in text.split()]

    def decode(self, token_ids: Iterable[int]) -> str:
        """Text for ``token_ids``, special tokens dropped."""
        words = self.id_to_word
        return " ".join(words[i] for i in token_ids if i >= NUM_SPECIAL)

    def token_text(self, token_id: int) -> str:
        """The text a streamed token contributes (a leading space, then the word)."""
        return "" if token_id < NUM_SPECIAL else " " + self.id_to_word[token_id]
