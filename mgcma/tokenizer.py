"""A WordPiece tokenizer trained from scratch for the compact preset.

Built with the `tokenizers` library (BERT's normaliser, pre-tokenizer and `[CLS] … [SEP]`
template) and wrapped in `transformers.PreTrainedTokenizerFast`, so it saves and loads with
`save_pretrained` / `AutoTokenizer.from_pretrained` exactly like a pretrained BERT tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 2000, min_frequency: int = 1
) -> PreTrainedTokenizerFast:
    """Train a lower-casing WordPiece tokenizer on `texts`.

    Parameters
    ----------
    texts : the transcripts of the training split (never the test split)
    vocab_size : upper bound on the vocabulary, special tokens included
    min_frequency : a merge must be seen at least this often
    """
    core = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    core.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix="##",
    )
    core.train_from_iterator(list(texts), trainer=trainer)
    cls_id, sep_id = core.token_to_id("[CLS]"), core.token_to_id("[SEP]")
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
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
