"""Compiled Paddle custom ops for the graphs' hot spots, each with Paddle's own op as the fallback."""
