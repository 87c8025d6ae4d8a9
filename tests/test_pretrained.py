"""The paper preset's loading code (`from_pretrained`) against tiny random local backbones."""

import shutil

import torch
from transformers import BertConfig, BertModel, BertTokenizer, Wav2Vec2Config, Wav2Vec2Model

from conftest import SENTENCES
from mgcma.batch import pad_waveforms
from mgcma.checkpoint import build_model, load_model, save_model
from mgcma.config import MGCMAConfig


def _tiny_backbones(root):
    speech_dir, text_dir = root / "wav2vec2-tiny", root / "bert-tiny"
    torch.manual_seed(0)
    Wav2Vec2Model(
        Wav2Vec2Config(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            conv_dim=[16] * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
        )
    ).save_pretrained(speech_dir)
    words = sorted({w for s in SENTENCES for w in s.split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    # transformers 5 may ignore vocab_file=: build from the mapping (the test checks the round trip)
    BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}).save_pretrained(text_dir)
    BertModel(
        BertConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
        )
    ).save_pretrained(text_dir)
    return speech_dir, text_dir


def test_paper_preset_loads_pretrained_backbones_offline_and_saves_self_contained(tmp_path):
    speech_dir, text_dir = _tiny_backbones(tmp_path)
    config = MGCMAConfig.preset("paper")
    config.speech.backbone, config.text.backbone = str(speech_dir), str(text_dir)
    config.alignment.dim, config.alignment.heads = 32, 2

    model = build_model(config).eval()  # tokenizer from the backbone directory
    reference = Wav2Vec2Model.from_pretrained(speech_dir)
    assert torch.equal(
        model.speech_encoder.backbone.feature_extractor.conv_layers[0].conv.weight,
        reference.feature_extractor.conv_layers[0].conv.weight,
    )  # the pretrained weights, not a fresh initialisation
    assert not any(
        p.requires_grad for p in model.speech_encoder.backbone.feature_extractor.parameters()
    )  # the CNN feature extractor is frozen, as in the paper
    ids = model.tokenizer("i am so happy")["input_ids"]
    assert model.tokenizer.convert_ids_to_tokens(ids) == [
        "[CLS]",
        "i",
        "am",
        "so",
        "happy",
        "[SEP]",
    ]

    speech, speech_mask = pad_waveforms([torch.randn(8000).numpy() * 0.1])
    inputs = dict(speech=speech, speech_mask=speech_mask, **model.tokenize(["i am so happy"]))
    with torch.no_grad():
        before = model(**inputs).logits
    checkpoint = save_model(model, tmp_path / "checkpoint")
    shutil.rmtree(speech_dir)
    shutil.rmtree(text_dir)  # the checkpoint must not need the backbones any more
    loaded = load_model(checkpoint)
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, before)
