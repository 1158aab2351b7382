"""minillm: a miniature LLM inference server.

The package mirrors the structure of a real serving engine at toy scale: a word-level tokenizer, a
deterministic stand-in for the model, a paged KV-cache manager with automatic prefix caching, an engine
that runs requests, and an OpenAI-compatible HTTP entrypoint that streams tokens.
"""

__version__ = "0.3.0"

from minillm.engine import EngineConfig, LLMEngine, SamplingParams

__all__ = ["EngineConfig", "LLMEngine", "SamplingParams", "__version__"]
