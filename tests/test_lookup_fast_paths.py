"""The shortcuts of the lookup path give exactly what the long way gives.

Request hashes skip the normalization rules when a body's JSON shows nothing they could change;
the miss explanation writes its canonical JSON with msgspec when that is the same text, and skips
the candidates whose upper bound cannot beat the nearest found so far. Each is checked here
against the plain computation, on generated values.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from api_recorder.hashing import (
    NEWEST,
    OLDER,
    http_hash,
    inference_hash,
    inference_hashes,
    request_hashes,
    stabilize,
    tool_hash,
    untouched_by_rules,
)
from api_recorder.mismatch import _canonical, _nearest

WORDS = st.sampled_from(
    [
        "score: 0.87",
        "attributes: {a: 1}",
        "document_id: 01234567-89ab-cdef-0123-456789abcdef",
        "<|01234567-89ab-cdef-0123-456789abcdef|>",
        "project_id",
        "pi is 3.14159",
        "\u0663.\u0661\u0664\u0661\u0665\u0669 in Arabic-Indic digits",
        "\uff13.\uff11\uff14\uff11\uff15\uff19",
        "4e",
        "1e5",
        "stream_options",
        "plain words",
        'é😀\n\t"\\',
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | WORDS
)
KEYS = st.text(max_size=6) | st.sampled_from(["project_id", "extra_body", "extra_query", "stream_options", "model"])
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
BODIES = st.dictionaries(KEYS, JSON, max_size=5)
URLS = st.sampled_from(
    [
        "http://localhost:8080/v1/chat/completions",
        "https://bedrock-runtime.us-east-1.amazonaws.com/openai/v1/chat/completions",
        "http://localhost:11434/api/tags",
        "http://localhost:8080/v1/models",
    ]
)
TEST_IDS = st.none() | st.sampled_from(["tests/a/test_x.py::test_y", "tests/b.py::t[é]"])


def reference_hash(method, url, body, test_id, *, shared=False, rules=NEWEST):
    """llama-stack's computation, written out: the rules, then json.dumps(sort_keys=True)."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    document = {
        "method": method.upper(),
        "endpoint": parsed.path,
        "body": rules(body, drop_stream_options="bedrock" in parsed.netloc),
    }
    if not shared and parsed.path not in {"/api/tags", "/v1/models", "/v1/openai/v1/models"}:
        document["test_id"] = test_id
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


@settings(max_examples=400, deadline=None)
@given(body=BODIES, url=URLS, test_id=TEST_IDS, shared=st.booleans())
def test_hashes_are_llama_stacks_whatever_the_body(body, url, test_id, shared):
    for rules in (NEWEST, OLDER):
        expected = reference_hash("post", url, body, test_id, shared=shared, rules=rules)
        assert inference_hash("post", url, body, test_id, shared=shared, rules=rules) == expected
    names = list(
        dict.fromkeys(reference_hash("POST", url, body, test_id, shared=shared, rules=r) for r in (NEWEST, OLDER))
    )
    assert inference_hashes("POST", url, body, test_id, shared=shared) == names
    if shared:  # what the recorder looks up for a model list: shared names, then with the test id
        names += [
            name
            for name in dict.fromkeys(reference_hash("POST", url, body, test_id, rules=r) for r in (NEWEST, OLDER))
            if name not in names
        ]
    assert request_hashes("POST", url, body, test_id, shared=shared, with_test_id_too=True) == names


@settings(max_examples=200, deadline=None)
@given(body=BODIES, payload=JSON, test_id=TEST_IDS)
def test_tool_and_http_hashes_are_llama_stacks(body, payload, test_id):
    tool = {"provider": "p", "tool_name": "t", "kwargs": stabilize(body), "test_id": test_id}
    if test_id is None:
        del tool["test_id"]
    assert tool_hash("p", "t", body, test_id) == hashlib.sha256(json.dumps(tool, sort_keys=True).encode()).hexdigest()
    http = {"test_id": test_id, "url": "http://x/v1/rerank", "method": "POST", "payload": NEWEST(payload)}
    expected = hashlib.sha256(json.dumps(http, sort_keys=True).encode()).hexdigest()
    assert http_hash("http://x/v1/rerank", "post", payload, test_id) == expected


@settings(max_examples=300, deadline=None)
@given(body=BODIES)
def test_a_body_said_untouched_is_left_as_it_is_by_both_rule_sets(body):
    if untouched_by_rules(body):
        assert json.dumps(NEWEST(body), sort_keys=True) == json.dumps(body, sort_keys=True)
        assert json.dumps(OLDER(body), sort_keys=True) == json.dumps(body, sort_keys=True)


def test_bodies_with_what_the_rules_change_are_not_untouched():
    for body in (
        {"temperature": 0.5},
        {"x": 1e16},
        {"x": 1e-7},
        {"q": "a score of 3.14159"},
        {"q": "\u0663.\u0661\u0664\u0661\u0665\u0669"},
        {"q": "score: 1"},
        {"q": "<|01234567-89ab-cdef-0123-456789abcdef|>"},
        {"extra_body": {"project_id": "p"}},
    ):
        assert not untouched_by_rules(body), body
    assert untouched_by_rules({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "n": 2})
    assert not untouched_by_rules({"stream_options": {}}, drop_stream_options=True)


@settings(max_examples=400, deadline=None)
@given(value=JSON)
def test_the_canonical_text_is_json_dumps(value):
    try:
        expected = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    except TypeError:  # keys of mixed types cannot be sorted: the same error either way
        return
    assert _canonical(value) == expected


def test_the_canonical_text_of_odd_values_is_json_dumps():
    odd = [{"b": (1, 2), "a": {1: "x"}}, {"when": object}, {"x": "\ud800"}, {"s": {1, 2}}, {"n": float("nan")}]
    for value in [*odd, {"f": 1e16}, {"f": -0.0}, {"big": 2**80}, {"e": b"bytes"}]:
        assert _canonical(value) == json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.text(alphabet="ab c\n", max_size=30), min_size=1, max_size=6),
    wanted=st.text("ab c\n", max_size=30),
)
def test_the_nearest_is_the_first_of_the_best_ratios(texts, wanted):
    candidates = [(Path(f"{index}.json"), text) for index, text in enumerate(texts)]
    expected = max(candidates, key=lambda item: difflib.SequenceMatcher(None, item[1], wanted).ratio())
    assert _nearest(candidates, wanted) == expected
