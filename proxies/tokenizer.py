"""The corpus tokenizer: a byte-level BPE trained on an equal-share sample of every domain, or
the user's own tokenizer (a ``tokenizer.json``, or a transformers folder holding one), read
offline with the ``tokenizers`` library."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from mixtures.errors import DataError

EOS = "<|endoftext|>"
#: The trained tokenizer's ids are stored as uint16, so its vocabulary must fit in it.
MAX_TRAINED_VOCAB = 65_535
#: Vocabulary of the trained BPE when the config gives none.
DEFAULT_TRAINED_VOCAB = 4096
#: End-of-text tokens of common tokenizer families (GPT-2/NeoX, Llama 2/T5, Llama 3, Gemma),
#: tried in this order when the config names none.
EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>")
TOKENIZER_FILE = "tokenizer.json"
#: A transformers folder's settings, whose ``eos_token`` names the tokenizer's own EOS.
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


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


@dataclass(frozen=True)
class GivenTokenizer:
    """A user's tokenizer, as read from disk."""

    tokenizer: Tokenizer
    path: Path
    """The ``tokenizer.json`` file that was read."""
    sha256: str
    """sha256 hex of that file's bytes: the tokenizer's identity in build keys and fingerprints."""
    config_eos: str | None
    """``eos_token`` of a transformers folder's ``tokenizer_config.json``, when it has one."""

    @property
    def vocab_size(self) -> int:
        return tokenizer_vocab_size(self.tokenizer)

    def check_vocab(self, vocab_size: int | None) -> None:
        """A configured ``vocab_size`` beside this tokenizer must be the tokenizer's own."""
        if vocab_size is not None and vocab_size != self.vocab_size:
            raise DataError(
                f"corpus.vocab_size is {vocab_size} but tokenizer {self.path} has "
                f"{self.vocab_size} ids; leave vocab_size out to use the tokenizer's"
            )

    def eos_id(self, eos_token: str | None = None) -> int:
        """The id of the EOS token: ``eos_token`` when given, else the folder's configured EOS,
        else the first of ``EOS_CANDIDATES`` the vocabulary has; DataError listing what was
        tried when none is there."""
        tried = [eos_token] if eos_token is not None else [self.config_eos, *EOS_CANDIDATES]
        names = list(dict.fromkeys(t for t in tried if t is not None))
        for name in names:
            value = self.tokenizer.token_to_id(name)
            if value is not None:
                return int(value)
        hint = "" if eos_token is not None else "; name it with corpus.eos_token"
        raise DataError(f"tokenizer {self.path} has none of the EOS tokens tried: {names}{hint}")


def tokenizer_vocab_size(tok: Tokenizer) -> int:
    """Size of the id space: one past the largest id of any token, added tokens included (a
    tokenizer may place its special tokens beyond its base vocabulary)."""
    vocab = tok.get_vocab(with_added_tokens=True)
    return max(tok.get_vocab_size(with_added_tokens=True), max(vocab.values(), default=-1) + 1)


def load_tokenizer(path: str | Path) -> GivenTokenizer:
    """Read a ``tokenizer.json`` file, or the one in a transformers tokenizer folder, offline.

    Truncation and padding saved with the tokenizer are switched off: the corpus is encoded
    whole, document by document. DataError naming the path when nothing loadable is there.
    """
    path = Path(path)
    folder = path if path.is_dir() else None
    file = path / TOKENIZER_FILE if folder is not None else path
    if not path.exists():
        raise DataError(f"corpus.tokenizer: {path} does not exist")
    if folder is not None and not file.is_file():
        raise DataError(
            f"corpus.tokenizer: folder {path} has no {TOKENIZER_FILE} (only fast tokenizers "
            "can be read; save yours with a PreTrainedTokenizerFast)"
        )
    data = file.read_bytes()
    try:
        tok = Tokenizer.from_str(data.decode("utf-8"))
    except Exception as err:  # the library raises plain Exceptions for malformed files
        raise DataError(f"corpus.tokenizer: {file} does not load as a tokenizer: {err}") from None
    tok.no_truncation()
    tok.no_padding()
    return GivenTokenizer(
        tokenizer=tok,
        path=file,
        sha256=hashlib.sha256(data).hexdigest(),
        config_eos=_configured_eos(folder) if folder is not None else None,
    )


def _configured_eos(folder: Path) -> str | None:
    """``eos_token`` of ``tokenizer_config.json`` (a string, or a dict with ``content``)."""
    path = folder / TOKENIZER_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("eos_token")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise DataError(f"corpus.tokenizer: {path} is not a JSON object: {err}") from None
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None
