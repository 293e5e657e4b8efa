"""Text domains -> token files: streamed, in worker processes, shard by shard, resumable.

A domain is a folder of ``.txt``/``.md`` (whole files), ``.jsonl`` (field ``"text"`` per line)
or ``.parquet`` (column ``"text"``) files; the text and JSON Lines formats may be gzip- or
zstd-compressed. :func:`prepare_tokens` cleans, splits, deduplicates, caps, splits into train
and val and tokenizes them into a :class:`proxies.tokens.TokenCorpus`. The same inputs, options
and tokenizer give the same tokens and the same fingerprint, whatever the number of workers.

Modules: ``plan`` (options, shards, keys), ``worker`` (one shard), ``finalize`` (dedup across
shards and domains, the cap, the split), ``build`` (the whole preparation). No Prefect here.
"""

from proxies.prepare.build import TokenizerSpec, prepare_tokens, sample_texts
from proxies.prepare.plan import MIN_DOC_CHARS, PrepOptions

__all__ = ["MIN_DOC_CHARS", "PrepOptions", "TokenizerSpec", "prepare_tokens", "sample_texts"]
