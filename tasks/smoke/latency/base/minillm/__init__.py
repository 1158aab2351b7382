"""minillm: a miniature LLM inference engine for latency experiments.

The package mirrors the decode loop of a real engine at toy scale: a deterministic stand-in for the
model that produces a logit for every vocabulary entry at each step, a sampler implementing temperature,
top-k and top-p sampling with per-request seeds, and an engine that runs a batch of prompts to
completion.
"""

__version__ = "0.1.0"

from minillm.engine import LLM, EngineConfig, RequestOutput
from minillm.sampling_params import SamplingParams

__all__ = ["LLM", "EngineConfig", "RequestOutput", "SamplingParams", "__version__"]
