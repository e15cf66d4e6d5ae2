"""Security: test ids that would write outside the project, and redaction that neither leaks a
credential nor alters ordinary data (issue 12, items 6 to 8)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import api_recorder
from api_recorder import context
from api_recorder.context import LLAMA_STACK_HEADER, OGX_HEADER, TEST_ID_HEADER, checked_test_id
from api_recorder.recorder import RECORDER
from api_recorder.redaction import (
    BEARER_TOKENS,
    GOOGLE_API_KEYS,
    OPENAI_KEYS,
    REDACTED,
    TAVILY_KEYS,
    KeyShape,
    Redact,
    Redactor,
    is_credential_name,
)
from api_recorder.storage import RecordingStore
from helpers import REPO, read_json, recordings_in

pytest.importorskip("openai")
# Inline pytester runs restore sys.modules afterwards: import the resource modules once, here.
import openai.resources.chat.completions.completions  # noqa: F401

InvalidTestIdError = api_recorder.InvalidTestIdError


@pytest.fixture
def project(workdir, monkeypatch):
    """The project root (the cwd, where recordings go); ``workdir / "outside"`` must stay empty."""
    root = workdir / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def outside(project: Path) -> Path:
    return project.parent / "outside"


def ask(client, content="What is the capital of France?"):
    return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": content}])


@api_recorder.tool(provider="security")
def handled(what: str) -> dict:
    return {"handled": what}


# -- test ids: what is refused ------------------------------------------------------------------

HOSTILE_IDS = [
    "/srv/x/pwn.py::t",
    "../../../etc/x.py::t",
    "tests/../../x.py::test_y",
    "..\\..\\x.py::t",
    "C:\\Windows\\x.py::t",
    "tests/x.py::t\x00",
    "tests/x.py::test_x[a\nb]",
    "tests/x.py::t\x1b[31m",
    "tests/x.py::t\r\nX-Injected: 1",
]


@pytest.mark.parametrize("test_id", HOSTILE_IDS)
def test_test_context_refuses_ids_that_leave_the_project_or_hold_control_characters(test_id):
    with pytest.raises(InvalidTestIdError) as caught:
        api_recorder.test_context(test_id)  # at once, not when the block is entered
    message = str(caught.value)
    assert repr(test_id) in message
    assert "A test id is a pytest node id" in message and "'tests/test_chat.py::test_answer" in message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, api_recorder.ApiRecorderError)
    assert RECORDER.current_test_id() is None


@pytest.mark.parametrize(
    "test_id",
    ["tests/a/test_x.py::test_y[gpt-4o-50%]", "tests/café/test_ü.py::t", "plain name", "x.py", "run::../odd"],
)
def test_ordinary_ids_are_accepted(test_id):
    assert checked_test_id(test_id) == test_id
    with api_recorder.test_context(test_id):
        assert RECORDER.current_test_id() == test_id


@pytest.mark.parametrize("escape", ["absolute", "relative"])
def test_a_record_run_with_a_refused_test_context_writes_nothing_anywhere(project, fake_openai, escape):
    test_file = str(outside(project) / "pwn.py") if escape == "absolute" else "../outside/pwn.py"
    with api_recorder.recording("record"), pytest.raises(InvalidTestIdError):
        with api_recorder.test_context(f"{test_file}::test_pwn"):
            ask(fake_openai.client())
    assert fake_openai.requests == []
    assert not outside(project).exists()
    assert recordings_in(project.parent) == []


@pytest.mark.parametrize("mode", ["record", "record-if-missing", "replay"])
def test_the_store_refuses_a_folder_outside_the_root_whatever_set_the_id(project, mode):
    """The last line of defence: an id set without test_context (the recorder's own scope)."""
    with pytest.raises(InvalidTestIdError, match="outside"):
        RecordingStore(Path("recordings"), project).test_folder("../outside/x.py::t")
    with api_recorder.recording(mode), RECORDER.test_ids.scope("../outside/pwn.py::t"):
        with pytest.raises(InvalidTestIdError):
            handled("x")
    assert not outside(project).exists() and recordings_in(project.parent) == []


def path_like_ids():
    pieces = st.sampled_from(["..", ".", "tests", "a", "test_x.py", ".py", "::", "/", "\\", "~", "C:", "\x00", "\n"])
    return st.lists(pieces, max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(test_id=st.one_of(st.text(), path_like_ids()))
def test_every_accepted_test_id_keeps_its_folder_inside_the_root(test_id):
    root = Path("/nonexistent-api-recorder-root/project")
    try:
        accepted = checked_test_id(test_id)
    except InvalidTestIdError as error:
        assert repr(test_id) in str(error)
        return
    folder = RecordingStore(Path("recordings"), root).test_folder(accepted)
    assert folder is None or Path(os.path.realpath(folder)).is_relative_to(root)


# -- test ids from the environment of an auto-activated process ---------------------------------

CHILD = """
import os, openai
from api_recorder.recorder import RECORDER
client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-sub", max_retries=0)
client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
print(repr(RECORDER.current_test_id()))
"""


def run_python(code, cwd, **env):
    prefixes = ("LLAMA_STACK_TEST_", "OGX_TEST_", "API_RECORDER_")
    base = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    # The checkout's boot module, not a copy an earlier install put in site-packages: PYTHONPATH
    # comes first on sys.path when the .pth hook imports it.
    source = str(REPO / "src")
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [source, base.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("kind", ["absolute", "relative", "control"])
def test_a_hostile_test_id_variable_is_ignored_with_a_warning(project, fake_openai, kind):
    test_id = {
        "absolute": f"{outside(project) / 'pwn.py'}::test_pwn",
        "relative": "../outside/pwn.py::test_pwn",
        "control": "tests/x.py::test_x[\x1b]",
    }[kind]
    result = run_python(
        CHILD,
        project,
        LLAMA_STACK_TEST_INFERENCE_MODE="record",
        FAKE_OPENAI_URL=fake_openai.url,
        API_RECORDER_TEST_ID=test_id,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"
    assert "ignoring API_RECORDER_TEST_ID" in result.stderr and repr(test_id) in result.stderr
    assert not outside(project).exists()
    (path,) = recordings_in(project)
    assert path.parent == project / "recordings" and read_json(path)["test_id"] is None
    assert "x-api-recorder-test-id" not in fake_openai.requests[0].headers


# -- test ids from headers: the middlewares -----------------------------------------------------


HOSTILE_KINDS = ["absolute", "relative", "escape-sequence", "nul"]


def hostile_id(project, kind):
    return {
        "absolute": f"{outside(project) / 'pwn.py'}::test_pwn",
        "relative": "../outside/pwn.py::test_pwn",
        "escape-sequence": "tests/x.py::t\x1b[2J",
        "nul": "tests/x.py::t\x00",
    }[kind]


def header_value(header, test_id):
    """What a hostile client sends: the id itself, or provider data holding it."""
    return test_id if header == TEST_ID_HEADER else json.dumps({"__test_id": test_id, "other": 1})


def assert_refused(caught, header, test_id):
    messages = [str(warning.message) for warning in caught if issubclass(warning.category, RuntimeWarning)]
    (message,) = [m for m in messages if header in m]
    assert repr(test_id) in message and "no test id" in message
    assert not any(char in message for char in "\x00\x1b\n")


def assert_recorded_under_no_test_id(project):
    assert not outside(project).exists()
    (path,) = recordings_in(project.parent)
    assert path.parent == project / "recordings" and read_json(path)["request"]["test_id"] is None


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
@pytest.mark.parametrize("header", [TEST_ID_HEADER, OGX_HEADER, LLAMA_STACK_HEADER])
def test_the_asgi_middleware_ignores_a_hostile_test_id_with_a_warning(project, header, kind):
    test_id, seen = hostile_id(project, kind), []

    async def app(scope, receive, send):
        seen.append(RECORDER.current_test_id())
        handled("asgi")

    value = header_value(header, test_id)
    scope = {"type": "http", "headers": [(header.lower().encode("latin-1"), value.encode("latin-1"))]}
    with api_recorder.recording("record"), pytest.warns(RuntimeWarning) as caught:
        asyncio.run(api_recorder.TestIdMiddleware(app)(scope, None, None))
    assert seen == [None]
    assert_refused(caught, header, test_id)
    assert_recorded_under_no_test_id(project)


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
@pytest.mark.parametrize("header", [TEST_ID_HEADER, OGX_HEADER, LLAMA_STACK_HEADER])
def test_the_wsgi_middleware_ignores_a_hostile_test_id_with_a_warning(project, header, kind):
    test_id, seen = hostile_id(project, kind), []

    def app(environ, start_response):
        seen.append(RECORDER.current_test_id())
        handled("wsgi")
        return [b"ok"]

    environ = {"HTTP_" + header.upper().replace("-", "_"): header_value(header, test_id)}
    with api_recorder.recording("record"), pytest.warns(RuntimeWarning) as caught:
        assert list(api_recorder.WSGITestIdMiddleware(app)(environ, lambda *a: None)) == [b"ok"]
    assert seen == [None]
    assert_refused(caught, header, test_id)
    assert_recorded_under_no_test_id(project)


def test_a_good_test_id_in_headers_is_still_honoured_without_a_warning(recwarn):
    test_id = "tests/a/test_x.py::test_y[p]"
    assert context.test_id_from_headers({TEST_ID_HEADER.lower(): test_id}) == test_id
    assert context.test_id_from_headers({OGX_HEADER.lower(): json.dumps({"__test_id": test_id})}) == test_id
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


# -- test ids sent in headers -------------------------------------------------------------------

ODD_NODE_IDS = ["tests/x.py::test_x[a\nb]", "tests/x.py::test_x[\x00]", "tests/café/test_x.py::test_ü"]


@pytest.mark.parametrize("test_id", ODD_NODE_IDS)
def test_a_node_id_with_characters_headers_cannot_carry_is_sent_percent_encoded(workdir, fake_openai, test_id):
    """pytest escapes such characters in node ids unless told not to; a test file's path may hold
    non-ASCII ones. The call goes through, and a server reads an id it accepts."""
    headers = context.test_id_headers_for(test_id)
    assert all(value.isascii() and value.isprintable() for value in headers.values())
    sent = headers[TEST_ID_HEADER]
    assert "%" in sent and json.loads(headers[OGX_HEADER])["__test_id"] == sent
    assert context.test_id_from_headers({name.lower(): value for name, value in headers.items()}) == sent
    with api_recorder.recording("record"), RECORDER.test_ids.scope(test_id):
        answer = ask(fake_openai.client(), "hello")
    assert answer.choices[0].message.content.startswith("echo: hello")
    assert fake_openai.requests[0].headers["x-api-recorder-test-id"] == sent
    (path,) = recordings_in(workdir)
    assert read_json(path)["response"].get("is_exception") is not True


ODD_IDS_SUITE = """
import os
import openai
import pytest

@pytest.mark.parametrize("name", ["a\\nb", "caf\\u00e9"])
def test_odd(name):
    client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="sk-test", max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": name}])
    assert answer.choices[0].message.content.startswith("echo")
"""


@pytest.mark.parametrize("escaping", [True, False], ids=["pytest-escapes", "escaping-disabled"])
def test_parametrize_ids_with_odd_characters_record(pytester, fake_openai, monkeypatch, escaping):
    monkeypatch.setenv("FAKE_OPENAI_URL", fake_openai.url)
    if not escaping:
        pytester.makeini("[pytest]\ndisable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n")
    pytester.makepyfile(test_odd=ODD_IDS_SUITE)
    pytester.runpytest("--inference-mode=record", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    sent = sorted(request.headers["x-api-recorder-test-id"] for request in fake_openai.requests)
    expected = ["test_odd.py::test_odd[a%0Ab]", "test_odd.py::test_odd[caf%C3%A9]"]
    assert sent == (["test_odd.py::test_odd[a\\nb]", "test_odd.py::test_odd[caf\\xe9]"] if escaping else expected)


# -- redaction: credential names in requests ----------------------------------------------------

SECRET = "hunter2-DISTINCTIVE-credential"  # not key-shaped: only its field's name can give it away
OTHER_SECRET = "correct-horse-battery"

CREDENTIAL_NAMES = [
    "api_key",
    "openai_api_key",
    "tavily_api_key",
    "OPENAI_API_KEY",
    "apiKey",
    "APIKey",
    "apikey",
    "X-Api-Key",
    "x_api_key",
    "private_key",
    "privateKey",
    "aws_secret_access_key",
    "AWS_ACCESS_KEY_ID",
    "client_secret",
    "clientSecret",
    "webhookSecret",
    "secret",
    "password",
    "db_password",
    "passwd",
    "passphrase",
    "credentials",
    "authorization",
    "Proxy-Authorization",
    "access_token",
    "refreshToken",
    "id_token",
    "x-auth-token",
    "GITHUB_TOKEN",
    "csrf_token",
    "basic_auth",
    "set-cookie",
]
ORDINARY_NAMES = [
    "token",
    "tokens",
    "max_tokens",
    "prompt_tokens",
    "token_count",
    "top_logprobs",
    "key",
    "primary_key",
    "cache_key",
    "public_key",
    "page_token",
    "eos_token",
    "keyword",
    "secretary",
    "tokenizer",
    "client_id",
    "auth_mode",
    "author",
]


@api_recorder.tool(provider="security")
def with_arguments(**arguments) -> dict:
    return {"ok": True}


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
def test_tool_arguments_named_like_credentials_are_redacted(workdir, name):
    assert is_credential_name(name)
    with api_recorder.recording("record"):
        with_arguments(**{name: SECRET, "query": "weather"})
    (path,) = recordings_in(workdir)
    assert SECRET.encode() not in path.read_bytes()
    assert read_json(path)["request"]["kwargs"] == {name: REDACTED, "query": "weather"}
    with api_recorder.recording("replay"):  # hashed scrubbed: another secret replays
        assert with_arguments(**{name: OTHER_SECRET, "query": "weather"}) == {"ok": True}


@pytest.mark.parametrize("name", ORDINARY_NAMES)
def test_ordinary_argument_names_are_kept(workdir, name):
    assert not is_credential_name(name)
    with api_recorder.recording("record"):
        with_arguments(**{name: "Hello"})
    (path,) = recordings_in(workdir)
    assert read_json(path)["request"]["kwargs"] == {name: "Hello"}


@dataclasses.dataclass
class Settings:
    region: str
    openai_api_key: str


@api_recorder.tool(provider="security")
def connect(user: str, password: str, settings: Settings, options: dict, credentials: dict) -> dict:
    return {"connected": user}


def test_credentials_leak_in_no_argument_form(workdir):
    """Positional, a dataclass field, nested dicts and lists, a credential-named dict."""
    arguments = (
        "alice",
        SECRET + "-positional",
        Settings("eu", SECRET + "-dataclass"),
        {"auth": {"clientSecret": SECRET + "-nested"}, "headers": [{"X-Api-Key": SECRET + "-list"}]},
        {"user": "alice", "value": SECRET + "-inside"},
    )
    with api_recorder.recording("record"):
        connect(*arguments)
    (path,) = recordings_in(workdir)
    assert b"DISTINCTIVE" not in path.read_bytes()
    stored = read_json(path)["request"]["kwargs"]
    assert stored["user"] == "alice" and stored["settings"]["region"] == "eu"
    other = ("alice", "x", Settings("eu", "y"), {"auth": {"clientSecret": "z"}, "headers": [{"X-Api-Key": "k"}]})
    with api_recorder.recording("replay"):
        assert connect(*other, {"user": "bob", "value": "v"}) == {"connected": "alice"}


def test_a_request_body_field_named_like_a_credential_is_redacted(workdir, fake_openai):
    with api_recorder.recording("record"):
        fake_openai.client().chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=5,
            extra_body={"tavily_api_key": SECRET, "metadata": {"clientSecret": SECRET}},
        )
    (path,) = recordings_in(workdir)
    assert SECRET.encode() not in path.read_bytes()
    body = read_json(path)["request"]["body"]
    assert body["extra_body"] == {"tavily_api_key": REDACTED, "metadata": {"clientSecret": REDACTED}}
    assert body["max_tokens"] == 5


# -- redaction: dict keys -----------------------------------------------------------------------

KEY_A = "sk-proj-KEYASDICTKEY1234567890abcdefAB"
KEY_B = "sk-proj-KEYASDICTKEY0987654321zyxwvuXY"


@api_recorder.tool(provider="security")
def quotas(per_key: dict) -> dict:
    return {"by_key": {key: value * 2 for key, value in per_key.items()}, "count": len(per_key)}


def test_key_shaped_dict_keys_are_redacted_and_stay_distinct(workdir):
    with api_recorder.recording("record"):
        live = quotas({KEY_A: 1, KEY_B: 2, REDACTED: 3})
    (path,) = recordings_in(workdir)
    assert b"KEYASDICTKEY" not in path.read_bytes()
    document = read_json(path)
    assert document["request"]["kwargs"]["per_key"] == {"<redacted-2>": 1, "<redacted-3>": 2, REDACTED: 3}
    assert document["response"]["body"] == {"by_key": {"<redacted-2>": 2, "<redacted-3>": 4, REDACTED: 6}, "count": 3}
    assert live["count"] == 3
    assert Redactor().scrub_request({KEY_A: 1, KEY_B: 2}) == {REDACTED: 1, "<redacted-2>": 2}


# -- redaction: ordinary data comes back unchanged ----------------------------------------------

ORDINARY_VALUES = [
    "the bearer of bad news",
    "Bearer bonds-and-treasury-notes-for-2024",
    "bearer-token-free",
    "sk-SK-ViktoriaNeural",
    "sk-SK-ViktoriaMultilingualNeural2",
    "task-sk-force-alpha-bravo-charlie-2024",
    "desk-sk-1234567890abcdefghij",
    "sk-learn-version-2-release-notes",
    "MD, PhD",
    "tvly-search-results",
    "use max_tokens=256 with your api_key",
    "password reset: see https://example.com/reset?user=alice",
    "AKIAIOSFODNN7EXAMPLE",
    "postgres://alice:s3cret@db.example.com/app",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
]


@pytest.mark.parametrize("value", ORDINARY_VALUES)
def test_ordinary_values_in_answers_replay_unchanged(workdir, fake_openai, value):
    """The fake echoes the prompt; the answer replays exactly (the last four are shapes only the
    opt-in presets catch)."""
    with api_recorder.recording("record"):
        live = ask(fake_openai.client(), value).choices[0].message.content
    assert live.startswith(f"echo: {value}")
    fake_openai.stop()
    with api_recorder.recording("replay"):
        assert ask(fake_openai.client(), value).choices[0].message.content == live


PROFILE = {
    "name": "Dr. Ada",
    "credentials": "MD, PhD",
    "password_hint": "the name of your first pet",
    "token": "Hello",
    "api_key_status": "revoked",
    "secret": "The Secret Garden",
    "authorization": "granted by the board",
    "voice": "sk-SK-ViktoriaNeural",
}


@api_recorder.tool(provider="security")
def profile(name: str) -> dict:
    return dict(PROFILE)


def test_tool_results_are_never_scrubbed_by_field_name(workdir):
    with api_recorder.recording("record"):
        assert profile("ada") == PROFILE
    (path,) = recordings_in(workdir)
    assert read_json(path)["response"]["body"] == PROFILE
    with api_recorder.recording("replay"):
        assert profile("ada") == PROFILE


# -- redaction: key-shaped strings in answers ---------------------------------------------------

ANSWER_KEYS = [
    "sk-proj-ANSWERFAKEKEY1234567890abcdEF",
    "sk-svcacct-ANSWERFAKEKEY_1234567890-abc",
    "sk-ANSWERFAKEKEYLEGACY" + "Ab12" * 7,
    "tvly-dev-ANSWERFAKEKEY12345678901",
    "Bearer ANSWERFAKEKEY.abc123_XYZ-987",
]


@pytest.mark.parametrize("key", ANSWER_KEYS)
def test_key_shaped_strings_in_answers_are_still_redacted(workdir, fake_openai, key):
    with api_recorder.recording("record"):
        live = ask(fake_openai.client(), f"my key is {key} ok").choices[0].message.content
    assert key in live
    (path,) = recordings_in(workdir)
    assert b"ANSWERFAKEKEY" not in path.read_bytes()
    fake_openai.stop()
    with api_recorder.recording("replay"):
        replayed = ask(fake_openai.client(), f"my key is {key} ok").choices[0].message.content
    assert replayed == live.replace(key, REDACTED)


# -- redaction: opt-in presets ------------------------------------------------------------------

PRESET_SECRETS = {
    "AWS_KEYS": "key id AKIAPRESETFAKE123456, aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/PRESETFAKE12345678",
    "JWTS": "eyJhbGciOiJIUzI1NiJ9.eyJQUkVTRVRGQUtFIjoiMTIzNDU2Nzg5MCJ9.UFJFU0VURkFLRXNpZ25hdHVyZQ",
    "DSN_PASSWORDS": "postgres://app:PRESETFAKEpw@db.example.com:5432/app",
    "TOKENS_40": "ghp_PRESETFAKE1234567890abcdefghijklmnop",
}


@api_recorder.tool(provider="security")
def echo_tool(text: str) -> dict:
    return {"text": text}


@pytest.mark.parametrize("name", sorted(PRESET_SECRETS))
def test_presets_redact_what_the_defaults_keep(workdir, name):
    text = PRESET_SECRETS[name]
    preset = getattr(Redact, name)
    assert preset in Redact.ALL and api_recorder.Redact is Redact
    assert Redactor().scrub_answer(text) == text  # not caught by default: ordinary data may look like it
    with api_recorder.recording("record", redact=[preset]):
        assert echo_tool(text) == {"text": text}
    (path,) = recordings_in(workdir)
    written = path.read_bytes()
    assert b"PRESETFAKE" not in written and b"UFJFU0VURkFL" not in written and REDACTED.encode() in written
    with api_recorder.recording("replay", redact=[preset]):
        assert "PRESETFAKE" not in echo_tool(text)["text"]


def test_a_dsn_keeps_all_but_its_password():
    assert Redactor([Redact.DSN_PASSWORDS]).scrub_answer("postgres://u:pw@h/db") == "postgres://u:<redacted>@h/db"


@pytest.mark.parametrize("name", ["aws", "jwt", "dsn", "hex40", "AWS_KEYS", "tokens_40"])
def test_a_preset_name_given_as_a_string_is_refused(workdir, name):
    with pytest.raises(ValueError, match=r"api_recorder\.Redact\."), api_recorder.recording("record", redact=[name]):
        pass
    assert Redactor([re.compile(name)]).scrub_answer(f"x {name} y") == f"x {REDACTED} y"  # a regex, if meant


@pytest.mark.parametrize("rule", ["sk-[a-z]+", re.compile("x"), Redact.JWTS, str.upper])
def test_one_rule_given_without_its_list_is_refused(workdir, rule):
    """``redact="..."`` would otherwise be one regex per character (a str is a sequence)."""
    before = api_recorder.current_mode()
    with pytest.raises(TypeError, match=r"redact=\["), api_recorder.recording("record", redact=rule):
        pass
    with pytest.raises(TypeError, match=r"redact=\["):
        api_recorder.enable("record", redact=rule)
    assert api_recorder.current_mode() is before  # a refused enable() changes nothing


# -- redaction: the quick check never skips a secret --------------------------------------------

NAMES = st.sampled_from(CREDENTIAL_NAMES + ORDINARY_NAMES) | st.text(max_size=12)
STRINGS = st.sampled_from(ORDINARY_VALUES + ANSWER_KEYS + [KEY_A, SECRET, ""]) | st.text(max_size=30)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | STRINGS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(NAMES | STRINGS, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON)
def test_the_quick_check_never_skips_a_secret(value):
    redactor = Redactor()
    assert redactor.scrub_request(value) == redactor._walk(value, True)
    assert redactor.scrub_answer(value) == redactor._walk(value, False)


BUILT_IN_SHAPES = [OPENAI_KEYS, TAVILY_KEYS, BEARER_TOKENS, GOOGLE_API_KEYS]
KEYISH = st.lists(
    st.sampled_from(
        [
            "sk-",
            "SK-",
            "sk-proj-",
            "tvly-",
            "TVLY-",
            "tvly-dev-",
            "Bearer ",
            "BEARER\t",
            "bEaReR  ",
            "AIza",
            "aiza",
            "x",
            "-",
            " ",
            "_",
        ]
    )
    | st.text(alphabet="abcXYZ0123456789_-", min_size=1, max_size=45),
    max_size=6,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=KEYISH)
def test_a_key_shape_skips_only_text_its_regex_cannot_match(text):
    """The marker test before each built-in regex (which spares compiling and running it on text
    without the marker) never changes the result: the same as running the regex on everything."""
    for shape in BUILT_IN_SHAPES:
        assert shape.sub(text) == shape.pattern.sub(shape._replace, text), shape


def test_text_without_any_marker_compiles_no_pattern():
    """The first replayed call must not pay for compiling the key regexes: its URL and body hold
    none of their markers (issue 15: the first chat within 1 ms of a warm one)."""
    fresh = [KeyShape(shape.name, shape._source, shape.check, marker=shape.marker) for shape in BUILT_IN_SHAPES]
    for shape in fresh:
        assert shape.sub("http://127.0.0.1:9/v1/chat/completions") == "http://127.0.0.1:9/v1/chat/completions"
        assert shape._compiled is None, shape
    assert fresh[2].sub(f"Authorization: BEARER {KEY_A}") == f"Authorization: {REDACTED}"  # marker in any case
