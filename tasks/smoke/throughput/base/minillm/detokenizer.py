"""Detokenization while a sequence is generated.

The engine needs each sequence's text after every decode step (stop strings are matched against it,
and a streaming front end would send the new part to the client). A token can end in the middle of a
multi-byte UTF-8 character, in which case the character is not readable yet; the text then stays as it
is until the rest of the character has been generated.
"""

from __future__ import annotations

from minillm.sequence import Sequence
from minillm.tokenizer import Tokenizer

REPLACEMENT_CHAR = "\ufffd"


class Detokenizer:
    """Keeps ``Sequence.output_text`` in step with ``Sequence.output_token_ids``."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def decode_step(self, seq: Sequence) -> str:
        """Account for the newest output token of ``seq``; return the text it made readable.

        ``seq.output_text`` always equals what ``Tokenizer.decode`` gives for the output tokens, as of
        the last step whose decoded text did not end in an unfinished (or malformed) character.
        """
        text = self.tokenizer.decode(seq.output_token_ids)
        if text.endswith(REPLACEMENT_CHAR):
            # The newest bytes do not form a complete character yet: wait for more tokens.
            return ""
        new_text = text[len(seq.output_text) :]
        seq.output_text = text
        return new_text
