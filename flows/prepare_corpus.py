"""Flow: build (or reuse) the corpus: sources -> tokenizer and token files, streamed and
resumable by shard; or, for ``source: tokens``, the user's token files checked and indexed in
place."""

from __future__ import annotations

from prefect import flow, get_run_logger

from configs.schema import ExperimentConfig
from runtime.crashes import record_flow_process
from runtime.placement import absolute_path
from tasks.corpus import (
    build_sources_task,
    prepare_tokens_task,
    source_folders,
    token_files_task,
)


@flow(name="prepare_corpus", log_prints=True, on_running=[record_flow_process])
def prepare_corpus(config: ExperimentConfig) -> str:
    """Build the corpus the config describes; returns the token folder, absolute. Reuses
    finished work."""
    c = config.corpus
    if c.source == "tokens":
        tokens = token_files_task(c)
    else:
        dirs = source_folders(c)
        if dirs is None:
            dirs = build_sources_task(c)
        tokens = prepare_tokens_task(c, dirs)
    tokens = absolute_path(tokens)
    get_run_logger().info("corpus ready at %s", tokens)
    return tokens
