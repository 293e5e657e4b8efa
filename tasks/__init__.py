#: Tag of every proxy and target training task; a concurrency limit on it bounds how many
#: train at once across all flow runs (e.g. one per GPU): ``mixopt serve --train-limit``.
TRAIN_TAG = "proxy"
