"""llama-stack's own recordings: read, typed, and found under the hash llama-stack gave them."""

from __future__ import annotations

import pytest

import api_recorder
from api_recorder.hashing import inference_hash, legacy_tool_hash
from helpers import SEED, read_json, sample_files

openai = pytest.importorskip("openai")
from openai.types import CreateEmbeddingResponse, Model  # noqa: E402
from openai.types.chat import ChatCompletion, ChatCompletionChunk  # noqa: E402


def test_seed_loads_as_36_typed_chunks_in_order():
    recording = api_recorder.load_recording(SEED)

    assert recording.test_id.startswith("tests/integration/responses/test_tool_responses.py::")
    assert recording.response.is_streaming is True
    chunks = recording.response.body
    assert len(chunks) == 36
    assert all(type(chunk) is ChatCompletionChunk for chunk in chunks)
    assert {chunk.id for chunk in chunks} == {"rec-714a7d73a6ab"}
    raw = read_json(SEED)["response"]["body"]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    expected = "".join(
        (env["__data__"]["choices"][0]["delta"].get("content") or "") for env in raw if env["__data__"]["choices"]
    )
    assert text == expected and "128" in text
    assert recording.request["endpoint"] == "/v1/chat/completions"
    assert recording.request["body"]["model"] == "gpt-4o"


def _expected_name(path) -> str:
    name = path.stem
    return name.split("-")[1] if name.startswith("models-") else name


def _inference_files():
    for path in sample_files():
        document = read_json(path)
        if "body" in document["request"] and document["request"].get("url", "").startswith("http"):
            yield path, document


def test_sample_inference_files_rehash_to_their_names():
    """Our hash is llama-stack's: the same call finds llama-stack's file."""
    matched = mismatched = 0
    for path, document in _inference_files():
        request = document["request"]
        shared = request["endpoint"] == "/v1/models"
        candidates = {
            inference_hash(request["method"], request["url"], request["body"], document.get("test_id")),
            inference_hash(request["method"], request["url"], request["body"], None, shared=shared),
        }
        if _expected_name(path) in candidates:
            matched += 1
        else:
            mismatched += 1
    # A handful of sample files were written by older llama-stack hash versions.
    assert matched >= 50
    assert mismatched <= 5


def test_sample_tool_files_match_the_legacy_tool_hash():
    count = 0
    for path in sample_files():
        request = read_json(path)["request"]
        if "tool_name" in request:
            assert legacy_tool_hash(request["provider"], request["tool_name"], request["kwargs"]) == path.stem
            count += 1
    assert count == 5


def test_every_installed_type_in_the_sample_rehydrates_to_its_class():
    counts: dict[type, int] = {}
    skipped = 0
    for path in sample_files():
        try:
            body = api_recorder.load_recording(path).response.body
        except api_recorder.TypeNotInstalledError:
            skipped += 1
            continue
        items = body if isinstance(body, list) else [body]
        for item in items:
            counts[type(item)] = counts.get(type(item), 0) + 1
            envelope_type = getattr(type(item), "__module__", "")
            assert not (isinstance(item, dict) and "__type__" in item), f"{path}: envelope left as dict"
            assert envelope_type != "builtins" or not isinstance(item, dict) or "__data__" not in item
    assert skipped == 9  # ollama and llama-stack's own types
    assert counts[ChatCompletionChunk] > 1500
    assert counts[ChatCompletion] == 20
    assert counts[CreateEmbeddingResponse] == 6
    assert counts[Model] == 127 + 1 + 1 + 126 + 128


def test_lenient_envelopes_still_come_back_as_their_class():
    """~2% of real envelopes fail strict validation (created: null, object: ""): the SDK takes them."""
    lenient = 0
    for path in sample_files():
        document = read_json(path)
        body = document["response"]["body"]
        for envelope in body if isinstance(body, list) else [body]:
            if not (isinstance(envelope, dict) and str(envelope.get("__type__", "")).startswith("openai.")):
                continue
            module, _, name = envelope["__type__"].rpartition(".")
            cls = getattr(__import__(module, fromlist=[name]), name)
            try:
                cls.model_validate(envelope["__data__"])
            except Exception:
                lenient += 1
    assert lenient > 10  # the sample does hold such envelopes, and the test above rebuilt them all
