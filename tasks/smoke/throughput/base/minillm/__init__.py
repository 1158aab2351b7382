"""minillm: a miniature offline LLM inference engine.

The package mirrors the structure of a real batch-inference engine at toy scale: a byte-fallback
subword tokenizer, a deterministic stand-in for the model, a first-come-first-served batch scheduler,
and a detokenizer that turns generated token ids into text while the sequences are still running (the
text is needed every step to evaluate stop strings).
"""

__version__ = "0.2.0"

from minillm.engine import LLM, EngineConfig
from minillm.sequence import RequestOutput, SamplingParams

__all__ = ["LLM", "EngineConfig", "RequestOutput", "SamplingParams", "__version__"]
