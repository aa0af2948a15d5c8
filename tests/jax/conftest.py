"""Skip the JAX tests when JAX, Flax or Optax is missing, and keep XLA to one thread."""

import os

import pytest

# One XLA thread, like torch.set_num_threads(1) in the top-level conftest; set before JAX loads.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

pytest.importorskip("jax")
pytest.importorskip("flax")
pytest.importorskip("optax")
