"""First-come-first-served batch scheduling.

Requests wait in arrival order; up to ``max_num_seqs`` of them run at once. A running sequence stays in
the batch until it finishes, and its slot is refilled from the queue at the start of the next step.
"""

from __future__ import annotations

from collections import deque

from minillm.sequence import Sequence


class Scheduler:
    """Decides which sequences take part in the next engine step."""

    def __init__(self, max_num_seqs: int, max_num_batched_tokens: int) -> None:
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> list[Sequence]:
        """Admit waiting sequences that fit; return the ones admitted now (they need a prefill)."""
        admitted: list[Sequence] = []
        budget = self.max_num_batched_tokens
        while self.waiting and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            cost = len(seq.prompt_token_ids)
            if admitted and cost > budget:
                break
            budget -= cost
            admitted.append(self.waiting.popleft())
            self.running.append(seq)
        return admitted

    def remove_finished(self) -> list[Sequence]:
        """Take finished sequences out of the batch, in batch order."""
        done = [seq for seq in self.running if seq.finished]
        if done:
            self.running = [seq for seq in self.running if not seq.finished]
        return done
