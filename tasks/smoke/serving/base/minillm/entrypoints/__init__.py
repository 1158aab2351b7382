"""Ways to run the engine: the OpenAI-compatible HTTP server and offline generation."""
