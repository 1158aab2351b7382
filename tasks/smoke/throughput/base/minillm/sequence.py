"""Requests and their state while the engine runs them."""

from __future__ import annotations

from dataclasses import dataclass, field

from minillm.model import ModelState


@dataclass(frozen=True)
class SamplingParams:
    """Per-request generation settings (decoding is greedy)."""

    max_tokens: int = 16
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if any(not s for s in self.stop):
            raise ValueError("stop strings must not be empty")


@dataclass
class Sequence:
    """One request being generated."""

    request_id: int
    prompt_token_ids: list[int]
    params: SamplingParams
    output_token_ids: list[int] = field(default_factory=list)
    # The detokenized output so far; it only ever grows, except when a stop string truncates it.
    output_text: str = ""
    finish_reason: str | None = None
    model_state: ModelState | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass(frozen=True)
class RequestOutput:
    """The result of one request."""

    request_id: int
    prompt_token_ids: list[int]
    output_token_ids: list[int]
    text: str
    finish_reason: str
