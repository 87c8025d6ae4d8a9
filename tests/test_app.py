"""The app served for real: a Gradio server in a subprocess, driven with gradio_client."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def _example(app_assets):
    row = json.loads((app_assets / "examples" / "examples.jsonl").read_text().splitlines()[0])
    return app_assets / "examples" / row["audio"], row["text"]


def test_api_analyze_returns_the_analysis(client, app_assets):
    from gradio_client import handle_file

    audio, text = _example(app_assets)
    result = client.predict(handle_file(str(audio)), text, api_name="/analyze")
    assert result["label"] in ("neutral", "happy", "angry", "sad")
    assert sum(result["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert result["label"] == max(result["probs"], key=result["probs"].get)
    assert result["transcript"] == text
    assert len(result["words"]) == len(text.split())
    heads = len(result["attention_text_to_speech"])
    assert heads == 2 and len(result["attention_text_to_speech"][0]) == len(result["words"])
    assert result["w2_distance"] >= 0 and 0 <= result["overlap"] <= 1
    assert len(result["neighbours"]) == 8 and set(result["map_position"]) == {
        "speech",
        "text",
        "fused",
    }
    assert 0 <= result["percentiles"]["w2_distance"] <= 100


def test_api_result_is_the_analysis_computed_in_process(client, app_assets, explorer):
    """Served JSON (gr.api, not gr.JSON) carries every field of the analysis unchanged."""
    from gradio_client import handle_file

    audio, text = _example(app_assets)
    served = client.predict(handle_file(str(audio)), text, api_name="/analyze")
    analysis, _ = explorer.analyze(str(audio), text)
    local = json.loads(json.dumps(analysis.to_dict()))
    assert set(served) == set(local)
    _assert_close(served, local)


def _assert_close(a, b) -> None:
    """Equal JSON values, numbers within 1e-5 (the server runs torch with its own threads)."""
    if isinstance(a, dict):
        assert set(a) == set(b)
        for key in a:
            _assert_close(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_close(x, y)
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-5)
    else:
        assert a == b


def test_api_output_sends_what_gr_json_sends():
    """PlainJSON through gr.api skips gr.JSON's per-number validation and Gradio's walk over
    every number, not a byte of what goes out."""
    import asyncio

    import gradio as gr
    import orjson
    from gradio.server_messages import ProcessCompletedMessage

    value = {
        "label": "sad",
        "probs": {"neutral": 0.1, "happy": 0.2, "angry": 0.0, "sad": 0.7},
        "attention": [[[0.25, 0.75], [1.0, 0.0]]],
        "w2_distance": None,
        "notes": ["<script>alert(1)</script>", "é 😀"],
        "frames": 3,
    }

    from demo.callbacks import PlainJSON

    def plain() -> PlainJSON:  # the app's /analyze answer
        return PlainJSON(value)

    def answer() -> dict:
        return value

    with gr.Blocks() as blocks:
        gr.api(plain, api_name="plain")
        gr.api(answer, api_name="dict")
        gr.Button().click(answer, None, gr.JSON(), api_name="json")

    def sent(api_name: str) -> bytes:
        (fn,) = [f for f in blocks.fns.values() if f.api_name == api_name]
        output = asyncio.run(blocks.process_api(fn, []))
        message = ProcessCompletedMessage(
            event_id="e", output={"data": output["data"]}, success=True
        )
        return orjson.dumps(message.model_dump(), default=str)

    assert sent("plain") == sent("json") == sent("dict")
    assert orjson.loads(sent("plain"))["output"]["data"] == [value]


def test_api_endpoints_take_the_documented_inputs(client):
    """/analyze: an audio file and a transcript that may be left out; /transcribe: the file."""
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    analyze, transcribe = api["/analyze"]["parameters"], api["/transcribe"]["parameters"]
    assert [p["parameter_name"] for p in analyze] == ["audio", "transcript"]
    assert [p["parameter_name"] for p in transcribe] == ["audio"]
    assert analyze[1]["parameter_has_default"] and analyze[1]["parameter_default"] == ""
    assert all(p["python_type"]["type"] == "None | filepath" for p in (analyze[0], *transcribe))
    assert "Whisper" in api["/analyze"]["description"]


def test_bad_file_gets_a_message_and_the_next_request_succeeds(client, app_assets, tmp_path):
    from gradio_client import handle_file

    bogus = tmp_path / "notes.wav"
    bogus.write_text("this is a shopping list, not audio\n" * 20)
    with pytest.raises(Exception, match="could not decode"):
        client.predict(handle_file(str(bogus)), "hello there", api_name="/analyze")
    audio, text = _example(app_assets)
    result = client.predict(handle_file(str(audio)), text, api_name="/analyze")
    assert sum(result["probs"].values()) == pytest.approx(1.0, abs=1e-4)


def test_empty_transcript_without_whisper_says_to_type_it(client, app_assets):
    """Whisper cannot load here (offline, not cached): the voice is still analysed, and the
    answer says why there are no words and what to do, once, unescaped."""
    from gradio_client import handle_file

    audio, _ = _example(app_assets)
    result = client.predict(handle_file(str(audio)), "", api_name="/analyze")
    assert sum(result["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert result["transcript"] == "" and result["words"] == []
    whisper_notes = [n for n in result["notes"] if "Whisper is not available here" in n]
    assert (
        len(whisper_notes) == 1
        and "&lt;" not in whisper_notes[0]
        and "&#x27;" not in whisper_notes[0]
    )
    assert " ".join(result["notes"]).lower().count("type the transcript") == 1
    assert any("text side had nothing to read" in n for n in result["notes"])


def test_api_transcribe_without_whisper_answers_in_plain_text(client, app_assets, app_url):
    """/transcribe when Whisper cannot load: no words, the reason as plain text (unescaped)."""
    from gradio_client import handle_file

    audio, _ = _example(app_assets)
    result = client.predict(handle_file(str(audio)), api_name="/transcribe")
    assert result["text"] == "" and result["words"] == []
    status = result["status"]
    assert status.startswith("Whisper is not available here") and "'tiny'" in status
    assert "&#x27;" not in status and "&lt;" not in status and "&amp;" not in status
