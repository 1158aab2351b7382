"""The engine: runs a batch of prompts through prefill and decode to completion."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from minillm.model import ToyLM
from minillm.sampler import Sampler
from minillm.sampling_params import SamplingParams

EOS_ID = 2


@dataclass(frozen=True)
class EngineConfig:
    """Static engine settings."""

    vocab_size: int = 8192
    seed: int = 0


@dataclass
class RequestOutput:
    """The tokens generated for one prompt."""

    request_id: int
    prompt_token_ids: list[int]
    output_token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None


class LLM:
    """Generates completions for a batch of token-id prompts, one decode step at a time."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.model = ToyLM(self.config.vocab_size, self.config.seed)
        self.sampler = Sampler()

    def generate(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams | Sequence[SamplingParams]
    ) -> list[RequestOutput]:
        """Completions for every prompt, in prompt order."""
        params_list = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        if len(params_list) != len(prompts):
            raise ValueError("need one SamplingParams per prompt")
        vocab_size = self.config.vocab_size
        outputs, states, generators = [], [], []
        for request_id, (prompt, p) in enumerate(zip(prompts, params_list, strict=True)):
            if not prompt or not all(0 <= t < vocab_size for t in prompt):
                raise ValueError(f"prompt {request_id} is empty or has token ids outside the vocabulary")
            outputs.append(RequestOutput(request_id, list(prompt)))
            states.append(self.model.prefill(prompt))
            seed = p.seed if p.seed is not None else random.randrange(1 << 32)
            generators.append(random.Random(seed * 1_000_003 + request_id))

        running = list(range(len(prompts)))
        while running:
            still_running = []
            for i in running:
                out, p = outputs[i], params_list[i]
                token_id = self.sampler.sample(self.model.logits(states[i]), p, generators[i])
                states[i] = self.model.append(states[i], token_id)
                out.output_token_ids.append(token_id)
                if token_id == EOS_ID and not p.ignore_eos:
                    out.finish_reason = "stop"
                elif len(out.output_token_ids) >= p.max_tokens:
                    out.finish_reason = "length"
                else:
                    still_running.append(i)
            running = still_running
        return outputs
