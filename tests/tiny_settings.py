"""Settings shared by tests that train small runs (importable because tests/ is on sys.path)."""

# Settings that keep a training run to about a second on one CPU thread.
TINY_OVERRIDES = (
    "model.hidden=[32,32]",
    "train.epochs=3",
    "train.batch_size=50",
    "train.eval_batch_size=100",
    "data.limit=300",
    "train.device='cpu'",
)
