"""The inference engine: turns prompts into streams of generated tokens.

A request is served in two phases. Prefill brings the model state up to the end of the prompt, reusing
KV-cache blocks that earlier requests already computed for the same prefix and caching the blocks it
computes itself. Decode then produces one token per step until ``max_tokens`` tokens were generated or
the model emits end-of-sequence.

The engine is shared by all server threads; a lock serialises access to the model and the KV cache.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from minillm.block_manager import Block, BlockManager
from minillm.model import INITIAL_STATE, ToyModel
from minillm.tokenizer import EOS_ID, WordTokenizer


@dataclass(frozen=True)
class EngineConfig:
    """Static engine settings."""

    block_size: int = 16
    num_gpu_blocks: int = 4096
    max_model_len: int = 8192
    enable_prefix_caching: bool = True
    seed: int = 0


@dataclass(frozen=True)
class SamplingParams:
    """Per-request generation settings (decoding is greedy); ``logprobs``: how many top tokens to report."""

    max_tokens: int = 16
    ignore_eos: bool = False
    logprobs: int = 0


@dataclass(frozen=True)
class TokenOutput:
    """One generated token as streamed to the client."""

    token_id: int
    text: str
    finish_reason: str | None = None
    top: tuple[tuple[int, float], ...] = ()  # the most likely tokens with their logprobs, when asked


@dataclass
class RequestMetrics:
    """What happened to one request."""

    num_prompt_tokens: int = 0
    num_cached_tokens: int = 0
    num_output_tokens: int = 0


class LLMEngine:
    """Runs prefill and decode for requests against one model and one KV cache."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.tokenizer = WordTokenizer()
        self.model = ToyModel(self.tokenizer.vocab_size, seed=self.config.seed)
        self.block_manager = BlockManager(self.config.num_gpu_blocks, self.config.block_size)
        self._lock = threading.Lock()

    def generate(
        self, prompt: str | list[int], params: SamplingParams, metrics: RequestMetrics | None = None
    ) -> Iterator[TokenOutput]:
        """Stream the tokens generated for ``prompt`` (text, or token ids)."""
        prompt_ids = self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)
        if not prompt_ids:
            raise ValueError("the prompt is empty")
        if len(prompt_ids) + params.max_tokens > self.config.max_model_len:
            raise ValueError(
                f"prompt ({len(prompt_ids)} tokens) plus max_tokens ({params.max_tokens}) exceeds "
                f"max_model_len ({self.config.max_model_len})"
            )
        metrics = metrics if metrics is not None else RequestMetrics()
        metrics.num_prompt_tokens = len(prompt_ids)

        with self._lock:
            state, blocks, num_cached = self._prefill(prompt_ids)
        metrics.num_cached_tokens = num_cached
        try:
            yield from self._decode(state, params, metrics)
        finally:
            with self._lock:
                self.block_manager.release(blocks)

    def _prefill(self, prompt_ids: list[int]) -> tuple[int, list[Block], int]:
        """Model state at the end of the prompt, the KV blocks it holds, and how many tokens were cached."""
        size = self.config.block_size
        if not self.config.enable_prefix_caching:
            return self.model.forward(prompt_ids), [], 0

        manager = self.block_manager
        keys = manager.block_keys(prompt_ids)
        match = manager.match_prefix(keys)
        blocks = list(match.blocks)
        state = blocks[-1].state if blocks else INITIAL_STATE
        position = match.num_tokens
        caching = True
        for key in keys[len(blocks) :]:
            state = self.model.forward(prompt_ids[position : position + size], state)
            position += size
            if caching:
                block = manager.cache_block(key, state)
                if block is None:  # pool exhausted: keep going without caching
                    caching = False
                else:
                    blocks.append(block)
        state = self.model.forward(prompt_ids[position:], state)
        return state, blocks, match.num_tokens

    def _decode(self, state: int, params: SamplingParams, metrics: RequestMetrics) -> Iterator[TokenOutput]:
        eos_id = None if params.ignore_eos else EOS_ID
        for step in range(params.max_tokens):
            with self._lock:
                top = tuple(self.model.top_tokens(state, params.logprobs, eos_id)) if params.logprobs else ()
                token_id = top[0][0] if top else self.model.next_token(state, eos_id)
                state = self.model.forward((token_id,), state)
            metrics.num_output_tokens += 1
            if token_id == EOS_ID:
                yield TokenOutput(token_id, "", "stop", top)
                return
            finish = "length" if step == params.max_tokens - 1 else None
            yield TokenOutput(token_id, self.tokenizer.token_text(token_id), finish, top)
