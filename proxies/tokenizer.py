"""The corpus tokenizer: a byte-level BPE trained on an equal-share sample of every domain."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from mixtures.errors import DataError

EOS = "<|endoftext|>"
#: The trained tokenizer's ids are stored as uint16, so its vocabulary must fit in it.
MAX_TRAINED_VOCAB = 65_535


def check_trained_vocab(vocab_size: int) -> None:
    if not 256 < vocab_size <= MAX_TRAINED_VOCAB:
        raise DataError(f"vocab_size must be in (256, {MAX_TRAINED_VOCAB}], got {vocab_size}")


def train_tokenizer(texts: Iterable[str], *, vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE tokenizer with ``EOS`` as its one special token."""
    check_trained_vocab(vocab_size)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def eos_id(tok: Tokenizer) -> int:
    """The id of ``EOS``, the separator written between documents."""
    value = tok.token_to_id(EOS)
    if value is None:  # a special token of the trainer, so only a changed trainer loses it
        raise DataError(f"the tokenizer has no {EOS!r} token")
    return int(value)
