"""Turning logits into tokens: greedy, or temperature / top-k / top-p sampling."""

from __future__ import annotations

import math
import random

from minillm.sampling_params import SamplingParams


class Sampler:
    """Picks the next token of a sequence from its logits."""

    def sample(self, logits: list[float], params: SamplingParams, generator: random.Random) -> int:
        """One token id drawn according to ``params``; ``generator`` supplies the randomness."""
        if params.temperature == 0.0:
            return max(range(len(logits)), key=logits.__getitem__)

        scaled = [x / params.temperature for x in logits]
        # Token ids from most to least likely; equal logits keep the lower token id first.
        candidates = sorted(range(len(scaled)), key=scaled.__getitem__, reverse=True)
        if params.top_k > 0:
            candidates = candidates[: params.top_k]

        # Unnormalised probabilities of the candidates (softmax numerators, shifted for stability).
        top = scaled[candidates[0]]
        weights = [math.exp(scaled[i] - top) for i in candidates]
        if params.top_p < 1.0:
            threshold = params.top_p * sum(weights)
            cumulative = 0.0
            keep = len(weights)
            for n, weight in enumerate(weights, 1):
                cumulative += weight
                if cumulative >= threshold:
                    keep = n
                    break
            candidates, weights = candidates[:keep], weights[:keep]

        point = generator.random() * sum(weights)
        for token_id, weight in zip(candidates, weights, strict=True):
            point -= weight
            if point < 0.0:
                return token_id
        return candidates[-1]
