"""llama-stack's own recordings: read, typed, and found under the hash llama-stack gave them."""

from __future__ import annotations

import shutil

import pytest

import api_recorder
from api_recorder.hashing import NEWEST, OLDER, inference_hash, legacy_tool_hash
from api_recorder.network import network_blocked
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


def _names_under(rules, document) -> set[str]:
    request = document["request"]
    return {
        inference_hash(request["method"], request["url"], request["body"], document.get("test_id"), rules=rules),
        inference_hash(request["method"], request["url"], request["body"], None, shared=True, rules=rules),
    }


def _found_files() -> list:
    """The sample's inference files named by the newest or the older hash of their own request."""
    return [
        (path, document)
        for path, document in _inference_files()
        if _expected_name(path) in _names_under(NEWEST, document) | _names_under(OLDER, document)
    ]


def test_sample_inference_files_are_named_by_the_newest_or_the_older_hash():
    """The measurement: which rule set named each of llama-stack's inference files."""
    newest = older_only = neither = 0
    for path, document in _inference_files():
        name = _expected_name(path)
        if name in _names_under(NEWEST, document):
            newest += 1
        elif name in _names_under(OLDER, document):
            older_only += 1
        else:
            neither += 1
    # 51 files hash alike under both rules; 2 file-search chats were hashed before the newest
    # rules (their prompts hold scores and document ids); 4 by hash versions older still.
    assert (newest, older_only, neither) == (51, 2, 4)
    assert len(_found_files()) == 53


def _sdk_call(client, endpoint: str, body: dict):
    """The OpenAI SDK call llama-stack made, from the recorded endpoint and arguments."""
    if endpoint == "/v1/chat/completions":
        return client.chat.completions.create(**body)
    if endpoint == "/v1/completions":
        return client.completions.create(**body)
    if endpoint == "/v1/embeddings":
        return client.embeddings.create(**body)
    assert endpoint == "/v1/models" and body == {}
    return client.models.list()


OPENAI_FILES = [(path, document) for path, document in _found_files() if document["request"]["endpoint"] != "/api/ps"]


def test_every_found_file_is_an_openai_call_but_two_ollama_ones():
    assert len(OPENAI_FILES) == 51  # the other two are Ollama's /api/ps, a client not covered yet


@pytest.mark.parametrize(
    ("path", "document"), OPENAI_FILES, ids=[f"{p.parent.parent.name}-{p.stem[:12]}" for p, _ in OPENAI_FILES]
)
def test_every_found_sample_file_replays_through_a_real_sdk_call(workdir, path, document):
    """Same arguments, same test id, same base URL: the real client finds llama-stack's file."""
    request = document["request"]
    base_url = request["url"][: -len(request["endpoint"])]
    client = openai.OpenAI(base_url=base_url, api_key="sk-replay-needs-no-key", max_retries=0)
    shared = request["endpoint"] == "/v1/models"
    folder = workdir / "recs"  # a copy: a run's report must never call the test data unused
    folder.mkdir()
    shutil.copy(path, folder)
    with (
        network_blocked(),
        api_recorder.recording("replay", folder),
        api_recorder.test_context(document.get("test_id")),
    ):
        answer = _sdk_call(client, request["endpoint"], request["body"])
        items = list(answer)  # a stream's chunks, or a page's models
    body = document["response"]["body"]
    if shared:
        assert {model.id for model in items} >= {envelope["__data__"]["id"] for envelope in body}
        assert all(type(model) is Model for model in items)
        return
    if document["response"]["is_streaming"]:
        assert len(items) == len(body)
        replayed, recorded = items, body
    else:
        replayed, recorded = [answer], [body]
    for item, envelope in zip(replayed, recorded, strict=True):
        assert f"{type(item).__module__}.{type(item).__qualname__}" == envelope["__type__"]
        assert item.model_dump(mode="json", by_alias=True, exclude_unset=True, warnings=False) == envelope["__data__"]


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
    import importlib.util

    ollama_installed = importlib.util.find_spec("ollama") is not None
    assert skipped == (7 if ollama_installed else 9)  # llama-stack's own types, and ollama's when missing
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
