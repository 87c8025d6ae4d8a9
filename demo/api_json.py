"""The `/analyze` endpoint's output: a gr.JSON that skips Gradio's per-number validation.

gr.JSON wraps what it sends in a pydantic model whose type is the recursive `JsonValue` union;
building and then serialising it calls a Python discriminator for every number. An analysis
holds two attention matrices (thousands of numbers): 4.0 ms of the server's interpreter time
per request, against 0.5 ms sent as it is (timed alone; py-spy --gil under load showed
gr.JSON's postprocess in a fifth of the samples holding the lock). The analysis is already
plain JSON (`Analysis.to_dict`: dicts, lists, floats, None for non-finite), so it goes out
unchanged: the browser and gradio_client receive the very bytes gr.JSON would send.

A subclass of gr.JSON would do the same, but Gradio writes a `.pyi` stub beside the module of
every Component subclass it sees; the component's own `postprocess` is replaced instead.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from pydantic import RootModel


class _Plain(RootModel[Any]):
    """Already JSON: `Any` is neither walked when built nor when serialised by type."""


def _as_is(value: Any) -> _Plain | None:
    return None if value is None else _Plain(value)


def plain_json(**kwargs) -> gr.JSON:
    """gr.JSON(**kwargs) for values that are already plain JSON (dicts, lists, str, numbers)."""
    component = gr.JSON(**kwargs)
    component.postprocess = _as_is  # Gradio calls `block.postprocess(value)` on the instance
    return component
