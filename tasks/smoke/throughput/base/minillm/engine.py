"""The offline engine: batched generation for a list of prompts.

Every step admits waiting requests (running the model over their prompts), then runs one decode step
for the whole batch: the model proposes one token per sequence, the detokenizer brings each sequence's
text up to date, and stop conditions (end-of-sequence, stop strings, ``max_tokens``) retire sequences.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from minillm.detokenizer import Detokenizer
from minillm.model import ToyModel
from minillm.scheduler import Scheduler
from minillm.sequence import RequestOutput, SamplingParams, Sequence
from minillm.tokenizer import EOS_ID, Tokenizer


@dataclass(frozen=True)
class EngineConfig:
    """Static engine settings."""

    max_num_seqs: int = 64
    max_num_batched_tokens: int = 8192
    num_word_pieces: int = 4000
    seed: int = 0


class LLM:
    """Generates completions for batches of prompts."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.tokenizer = Tokenizer(self.config.num_word_pieces)
        self.model = ToyModel(self.tokenizer.vocab_size, self.tokenizer.num_suffix_pieces, self.config.seed)
        self.detokenizer = Detokenizer(self.tokenizer)
        self.num_steps = 0

    def generate(
        self, prompts: Iterable[str | list[int]], params: SamplingParams | list[SamplingParams]
    ) -> list[RequestOutput]:
        """Completions for ``prompts`` (text or token ids), in prompt order."""
        scheduler = Scheduler(self.config.max_num_seqs, self.config.max_num_batched_tokens)
        prompt_list = list(prompts)
        params_list = params if isinstance(params, list) else [params] * len(prompt_list)
        if len(params_list) != len(prompt_list):
            raise ValueError("need one SamplingParams per prompt")
        for request_id, (prompt, p) in enumerate(zip(prompt_list, params_list, strict=True)):
            token_ids = self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)
            if not token_ids:
                raise ValueError(f"prompt {request_id} is empty")
            scheduler.add(Sequence(request_id, token_ids, p))

        outputs: list[RequestOutput | None] = [None] * len(prompt_list)
        while scheduler.has_unfinished():
            self.step(scheduler)
            for seq in scheduler.remove_finished():
                assert seq.finish_reason is not None
                outputs[seq.request_id] = RequestOutput(
                    seq.request_id,
                    seq.prompt_token_ids,
                    seq.output_token_ids,
                    seq.output_text,
                    seq.finish_reason,
                )
        return [out for out in outputs if out is not None]

    def step(self, scheduler: Scheduler) -> None:
        """Prefill newly admitted sequences, then decode one token for every running sequence."""
        for seq in scheduler.schedule():
            seq.model_state = self.model.prefill(seq.prompt_token_ids)
        batch = scheduler.running
        states = [seq.model_state for seq in batch]
        assert all(state is not None for state in states)
        next_tokens = self.model.decode(states, [seq.params.ignore_eos for seq in batch])  # type: ignore[arg-type]
        for seq, token_id in zip(batch, next_tokens, strict=True):
            seq.output_token_ids.append(token_id)
            new_text = self.detokenizer.decode_step(seq)
            self._check_stop(seq, token_id, new_text)
        self.num_steps += 1

    @staticmethod
    def _check_stop(seq: Sequence, token_id: int, new_text: str) -> None:
        params = seq.params
        if token_id == EOS_ID and not params.ignore_eos:
            seq.finish_reason = "stop"
            return
        if new_text and params.stop:
            # Only a match that overlaps the new text can be new.
            window_start = len(seq.output_text) - len(new_text)
            for stop in params.stop:
                index = seq.output_text.find(stop, max(0, window_start - len(stop) + 1))
                if index != -1:
                    seq.output_text = seq.output_text[:index]
                    seq.finish_reason = "stop"
                    return
        if len(seq.output_token_ids) >= params.max_tokens:
            seq.finish_reason = "length"
