"""The behaviour model: LSTM, checkpoint, training and the micro-batching inference server."""

# Labels a model treats as normal when its checkpoint (or training run) names none other.
DEFAULT_NORMAL_LABELS: frozenset[str] = frozenset({"standing", "walking"})
