"""A WordPiece tokenizer built from scratch for the compact preset.

The tokenizer is the `tokenizers` library's WordPiece model with BERT's normaliser, pre-tokenizer
and `[CLS] … [SEP]` template, wrapped in `transformers.PreTrainedTokenizerFast`, so it saves and
loads with `save_pretrained` / `AutoTokenizer.from_pretrained` like a pretrained BERT tokenizer.

Its vocabulary is chosen here, deterministically: the special tokens, every character seen (alone
and as a `##` continuation, so any word can be spelled), then whole words by descending frequency
(ties alphabetical). `tokenizers`' own WordPieceTrainer breaks frequency ties in hash-map order,
which gave two runs with the same seed different vocabularies — and different models.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 2000, min_frequency: int = 1
) -> PreTrainedTokenizerFast:
    """Build a lower-casing WordPiece tokenizer whose vocabulary covers `texts`.

    Parameters
    ----------
    texts : the transcripts of the training split (never the test split)
    vocab_size : upper bound on the vocabulary, special tokens and characters included
    min_frequency : a whole word enters the vocabulary when seen at least this often
    """
    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        pieces = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
        counts.update(word for word, _ in pieces)
    characters = sorted({c for word in counts for c in word})
    vocab = [*SPECIAL_TOKENS, *characters, *(f"##{c}" for c in characters)]
    known = set(vocab)
    ranked = sorted(
        (w for w, n in counts.items() if n >= min_frequency and w not in known),
        key=lambda w: (-counts[w], w),
    )
    vocab += ranked[: max(vocab_size - len(vocab), 0)]
    core = Tokenizer(
        models.WordPiece(
            {t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100
        )
    )
    core.normalizer = normalizer
    core.pre_tokenizer = pre_tokenizer
    core.decoder = decoders.WordPiece(prefix="##")
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab.index("[CLS]")), ("[SEP]", vocab.index("[SEP]"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )
