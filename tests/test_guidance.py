"""Token-attention guidance: word timings → token spans → a loss that moves attention onto words."""

import math

import numpy as np
import pytest
import torch

from conftest import tiny_config
from mgcma.batch import tokenize_texts
from mgcma.losses import MGCMALoss, token_guidance
from mgcma.model import MGCMA
from mgcma.model_output import MGCMAOutput
from train.data import Collator, EmotionDataset
from train.manifest import load_manifest

NAN = float("nan")


def test_token_spans_give_each_sub_word_its_word_span(tokenizer):
    texts = ["What a WONDERFUL day!", "what a day"]
    words = [
        (("what", 0.0, 0.3), ("a", 0.3, 0.4), ("wonderful", 0.4, 1.1), ("day", 1.1, 1.5)),
        None,  # no timings for the second transcript
    ]
    batch = tokenize_texts(tokenizer, texts, max_tokens=32, words=words)
    spans = batch["token_spans"]  # (2, T_t, 2)
    assert spans.shape == (*batch["input_ids"].shape, 2)
    offsets = tokenizer(texts[0], return_offsets_mapping=True)["offset_mapping"]
    # character spans of "What", "a", "WONDERFUL", "day!" and the true times of those words
    word_chars = [(0, 4), (5, 6), (7, 16), (17, 21)]
    word_times = [(0.0, 0.3), (0.3, 0.4), (0.4, 1.1), (1.1, 1.5)]
    for index, (start, end) in enumerate(offsets):
        if end == start:  # [CLS], [SEP]
            assert torch.isnan(spans[0, index]).all()
            continue
        word = next(w for w, (a, b) in enumerate(word_chars) if a <= start < b)
        assert spans[0, index].tolist() == pytest.approx(word_times[word])
    assert torch.isnan(spans[0, len(offsets) :]).all()  # padding
    assert torch.isnan(spans[1]).all()


def _output(t2s, s2t, times, speech_mask, text_mask) -> MGCMAOutput:
    return MGCMAOutput(
        logits=torch.zeros(t2s.shape[0], 4),
        fused=torch.zeros(t2s.shape[0], 2),
        speech_mask=speech_mask,
        text_mask=text_mask,
        frame_times=times,
        attention_text_to_speech=t2s,
        attention_speech_to_text=s2t,
    )


def test_guidance_is_minus_log_mass_inside_and_ignores_untimed_tokens_and_silence():
    # 10 frames at 0.05, 0.15, …, 0.95 s; 3 tokens: [CLS] (untimed), "hi" in [0.2, 0.4), [SEP]
    times = torch.arange(10) * 0.1 + 0.05
    spans = torch.tensor([[[NAN, NAN], [0.2, 0.4], [NAN, NAN]]])  # (1, 3, 2)
    speech_mask = torch.ones(1, 10, dtype=torch.bool)
    text_mask = torch.ones(1, 3, dtype=torch.bool)
    t2s = torch.full((1, 1, 3, 10), 0.1)  # uniform over frames: 2 of 10 lie inside the word
    s2t = torch.full((1, 1, 10, 3), 1 / 3)  # uniform over tokens: 1 of 3 is the word
    uniform = token_guidance(_output(t2s, s2t, times, speech_mask, text_mask), spans)
    assert uniform.item() == pytest.approx(0.5 * (-math.log(0.2) - math.log(1 / 3)), rel=1e-5)

    on_word_t2s = torch.zeros(1, 1, 3, 10)
    on_word_t2s[..., 2] = 1.0  # frame 0.25 s, inside [0.2, 0.4)
    on_word_s2t = torch.zeros(1, 1, 10, 3)
    on_word_s2t[..., 1] = 1.0  # every frame on "hi" (only frames 2 and 3 are asked)
    aligned = token_guidance(
        _output(on_word_t2s, on_word_s2t, times, speech_mask, text_mask), spans
    )
    assert aligned.item() == pytest.approx(0.0, abs=1e-5)

    # frames outside the speech mask never count as "inside"
    speech_mask[0, 2:4] = False
    masked = token_guidance(_output(on_word_t2s, on_word_s2t, times, speech_mask, text_mask), spans)
    assert masked.item() == 0.0  # no timed token has a real frame left: zero, still differentiable


def test_the_loss_has_a_guidance_term_only_where_it_can_apply(tokenizer):
    config = tiny_config(**{"loss.token_guidance_weight": 0.5})
    torch.manual_seed(0)
    model = MGCMA(config, tokenizer).eval()
    speech = torch.randn(2, 16000) * 0.1
    mask = torch.ones_like(speech, dtype=torch.bool)
    batch = tokenize_texts(
        tokenizer, ["what a day", "a good day"], 16, [(("what", 0, 0.3), ("a", 0.3, 0.5)), None]
    )
    inputs = dict(speech=speech, speech_mask=mask, input_ids=batch["input_ids"])
    inputs["text_mask"] = batch["text_mask"]
    output = model(**inputs, return_attention=True)
    labels = torch.tensor([0, 1])
    criterion = MGCMALoss(config)
    assert criterion.needs_attention
    terms = criterion(output, labels, batch["token_spans"])
    assert terms["token_guidance"].item() > 0
    expected = sum(criterion.weights[k] * v for k, v in terms.items() if k != "total")
    assert terms["total"].item() == pytest.approx(expected.item())
    assert "token_guidance" not in criterion(output, labels)  # no spans given: nothing to guide
    with pytest.raises(ValueError, match="return_attention"):
        criterion(model(**inputs), labels, batch["token_spans"])
    no_token = config.ablation("no_token")
    assert not MGCMALoss(no_token).needs_attention
    assert not MGCMALoss(tiny_config()).needs_attention  # the paper's setting: weight 0


def test_speed_perturbation_moves_the_word_timings_with_the_audio(tiny_corpus):
    utterances = load_manifest(tiny_corpus)[:2]

    def twice_as_slow(samples, rng):
        return np.repeat(samples, 2)

    plain = EmotionDataset(utterances)[0]
    slowed = EmotionDataset(utterances, augment=twice_as_slow)[0]
    assert slowed["speech"].size == 2 * plain["speech"].size
    for (word, start, end), (same, slow_start, slow_end) in zip(
        plain["words"], slowed["words"], strict=True
    ):
        assert word == same
        assert (slow_start, slow_end) == pytest.approx((2 * start, 2 * end))


def test_guidance_alone_teaches_a_tiny_model_where_the_words_are(tiny_corpus, tokenizer):
    """Real espeak-ng audio and word timings → Collator spans → loss: attention finds the words."""
    utterances = load_manifest(tiny_corpus)[:8]
    items = [EmotionDataset(utterances)[i] for i in range(len(utterances))]
    config = tiny_config(**{"loss.token_guidance_weight": 1.0, "alignment.dropout": 0.0})
    torch.manual_seed(0)
    model = MGCMA(config, tokenizer)
    batch = Collator(tokenizer, 64, token_spans=True)(items)
    spans = batch["token_spans"]
    assert not torch.isnan(spans).all()
    inputs = {k: batch[k] for k in ("speech", "speech_mask", "input_ids", "text_mask")}

    def share_inside() -> tuple[float, float]:
        """Mean attention mass of timed tokens inside their span, and uniform attention's."""
        model.eval()
        with torch.no_grad():
            output = model(**inputs, return_attention=True)
        model.train()
        times = output.frame_times
        inside = (times >= spans[..., :1]) & (times < spans[..., 1:]) & output.speech_mask[:, None]
        valid = inside.any(-1)  # (B, T_t)
        mass = (output.attention_text_to_speech.mean(1) * inside).sum(-1)  # (B, T_t)
        frames = output.speech_mask.sum(-1, keepdim=True)  # (B, 1)
        uniform = inside.sum(-1) / frames  # (B, T_t)
        return mass[valid].mean().item(), uniform[valid].mean().item()

    before, uniform = share_inside()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    criterion = MGCMALoss(config)
    for _ in range(60):
        output = model(**inputs, return_attention=True)
        loss = criterion(output, batch["labels"], spans)["token_guidance"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after, _ = share_inside()
    assert before < 2 * uniform  # an untrained model does not know where the words are
    assert after > 3 * uniform and after > 2 * before
