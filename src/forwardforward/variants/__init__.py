"""Variants of Forward-Forward built from the core blocks, objectives and trainer."""
