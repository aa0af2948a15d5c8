"""Successors of Forward-Forward, each built from the core's parts (see the sub-packages)."""
