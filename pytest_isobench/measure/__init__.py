"""Measurement logic: benchmark-output parsers, robust statistics and the hard (performance) verdict."""
