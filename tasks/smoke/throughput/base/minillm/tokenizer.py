"""A subword tokenizer with byte fallback, in the style of SentencePiece BPE vocabularies.

Token ids:

- ``0..2``: the special tokens ``<unk>``, ``<s>`` and ``</s>``;
- ``3..258``: byte tokens ``<0x00>``..``<0xFF>``, used for text the word pieces cannot spell (non-ASCII
  characters are spelled as their UTF-8 bytes, one token per byte);
- the rest: word pieces. A piece starting with ``▁`` begins a new word (the ``▁`` stands for a space),
  other pieces continue the current word (suffixes, punctuation).

Decoding joins the pieces' bytes, decodes them as UTF-8 (malformed bytes become U+FFFD) and drops the
single space that the first word-initial piece contributes.
"""

from __future__ import annotations

from collections.abc import Iterable

UNK_ID = 0
BOS_ID = 1
EOS_ID = 2
NUM_SPECIAL = 3
BYTE_OFFSET = NUM_SPECIAL
NUM_BYTE_TOKENS = 256
FIRST_PIECE_ID = BYTE_OFFSET + NUM_BYTE_TOKENS
SPACE_MARK = "▁"

_COMMON_WORDS = (
    "the of and to in is was for on that with as by at from it his an were are which this be has or "
    "had first one their its new after but who not they have her she two been other when there all "
    "during into school time may years more most only over city some world would where later up such "
    "used many can state about national out known university united then made model token serving "
    "request batch cache memory kernel latency throughput prompt output engine layer attention"
).split()
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh", "th", "st")
_NUCLEI = ("a", "e", "i", "o", "u", "ai", "ea", "ou")
_SUFFIXES = ("s", "ed", "ing", "ly", "er", "est", "'s", ",", ".", ";", ":", "!", "?", ")", "-")


def _vocabulary(num_word_pieces: int) -> list[str]:
    syllables = [onset + nucleus for onset in _ONSETS for nucleus in _NUCLEI]
    words = list(_COMMON_WORDS)
    n = len(syllables)
    index = 0
    while len(words) < num_word_pieces:
        first, second = divmod(index * 389 % (n * n), n)
        words.append(syllables[first] + syllables[second])
        index += 1
    return [SPACE_MARK + word for word in words] + list(_SUFFIXES)


class Tokenizer:
    """Byte-fallback subword tokenizer over a synthetic vocabulary."""

    def __init__(self, num_word_pieces: int = 4000) -> None:
        specials = ["<unk>", "<s>", "</s>"]
        byte_pieces = [f"<0x{b:02X}>" for b in range(NUM_BYTE_TOKENS)]
        self.pieces: list[str] = specials + byte_pieces + _vocabulary(num_word_pieces)
        self.piece_to_id = {piece: i for i, piece in enumerate(self.pieces)}
        # The bytes each token contributes to decoded text; special tokens contribute nothing.
        self.token_bytes: list[bytes] = [b""] * NUM_SPECIAL + [bytes((b,)) for b in range(NUM_BYTE_TOKENS)]
        self.token_bytes += [
            piece.replace(SPACE_MARK, " ").encode() for piece in self.pieces[FIRST_PIECE_ID:]
        ]
        self.num_suffix_pieces = len(_SUFFIXES)

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def encode(self, text: str) -> list[int]:
        """Token ids for ``text``: whole words where the vocabulary has them, bytes otherwise."""
        ids: list[int] = []
        for word in text.split():
            piece_id = self.piece_to_id.get(SPACE_MARK + word)
            if piece_id is not None:
                ids.append(piece_id)
            else:
                ids.extend(BYTE_OFFSET + b for b in (" " + word).encode())
        return ids

    def decode(self, token_ids: Iterable[int]) -> str:
        """Text for ``token_ids``; special tokens are skipped."""
        token_bytes = self.token_bytes
        text = b"".join([token_bytes[i] for i in token_ids]).decode("utf-8", errors="replace")
        return text[1:] if text.startswith(" ") else text

    def is_special(self, token_id: int) -> bool:
        return token_id < NUM_SPECIAL
