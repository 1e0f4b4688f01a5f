"""The LLM seam against the real openai client and the scripted local server."""

from __future__ import annotations

import json
import logging
import re
import time
import traceback

import pytest

from rag.adapters.openai_chat import OpenAIChatModel, build_chat_model, build_openai_client, endpoint_host
from rag.config import Settings
from rag.errors import ConfigError, ProviderError, SchemaError
from rag.prompts import ABSTAIN, citation_key, format_passage, load_prompt
from rag.replies import complete_json
from rag.types import ChatResult
from tests.chroma_server import free_port
from tests.fake_openai import close, delay, error, fake_vector, malformed, ok, refusal, truncated

KEY = "sk-test-DOSSIER-KEY-4242424242"
GOOD = {
    "sentences": [{"text": "They met in Moscow.", "citations": [{"key": "S1", "quote": "met in Moscow"}]}],
    "abstained": False,
}
ANSWER_SCHEMA = load_prompt("answer").schema or {}
USER = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "Where did they meet?"}]


def make_model(fake, **changes) -> OpenAIChatModel:
    values = {
        "openai_api_key": KEY,
        "openai_base_url": fake.base_url,
        "llm_model": "test-model",
        "llm_timeout": 5.0,
        "llm_max_retries": 2,
        **changes,
    }
    model = build_chat_model(Settings(**values))
    assert isinstance(model, OpenAIChatModel)
    return model


def ask(model, **kw):
    return complete_json(model, USER, ANSWER_SCHEMA, schema_name="answer", **kw)


# --- building ---------------------------------------------------------------------------------


def test_no_key_means_no_chat_model():
    assert build_chat_model(Settings()) is None
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        build_openai_client(Settings())


def test_client_is_built_from_settings(fake_openai):
    client = build_openai_client(
        Settings(openai_api_key=KEY, openai_base_url=fake_openai.base_url, llm_timeout=7.5, llm_max_retries=4)
    )
    assert client.max_retries == 4
    assert client.timeout == 7.5
    assert str(client.base_url).rstrip("/") == fake_openai.base_url
    model = build_chat_model(Settings(openai_api_key=KEY, llm_model="m"), client=client)
    assert model is not None and model.endpoint == f"127.0.0.1:{fake_openai.port}" and model.name == "m"


def test_default_endpoint_is_openai():
    model = build_chat_model(Settings(openai_api_key=KEY))
    assert model is not None and model.endpoint == "api.openai.com"


@pytest.mark.parametrize(
    "url, host",
    [
        ("https://user:secret@llm.example.org:8443/v1?key=abc", "llm.example.org:8443"),
        ("http://127.0.0.1:11434/v1", "127.0.0.1:11434"),
        (None, "api.openai.com"),
    ],
)
def test_endpoint_host_hides_credentials(url, host):
    assert endpoint_host(url) == host


# --- good replies -----------------------------------------------------------------------------


def test_good_json_answer_and_request_shape(fake_openai):
    fake_openai.script(ok(GOOD, usage={"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}))
    data, result = ask(make_model(fake_openai))
    assert data == GOOD
    assert result.usage == {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    assert result.finish_reason == "stop" and result.model == "test-model"
    (req,) = fake_openai.chat_requests()
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.json["temperature"] == 0
    assert req.json["model"] == "test-model"
    assert req.json["messages"] == USER
    assert req.json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA, "strict": True},
    }


def test_plain_completion_has_no_response_format(fake_openai):
    fake_openai.script(ok("Moscow."))
    result = make_model(fake_openai).complete(USER)
    assert result == ChatResult(
        "Moscow.", {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}, "test-model", "stop"
    )
    req = fake_openai.chat_requests()[0].json
    assert "response_format" not in req and req["temperature"] == 0


def test_streaming_yields_deltas_and_usage(fake_openai):
    text = "The working group met in Moscow in March, according to the report."
    fake_openai.script(ok(text, usage={"prompt_tokens": 50, "completion_tokens": 15, "total_tokens": 65}))
    model = make_model(fake_openai)
    deltas = list(model.stream(USER))
    assert len(deltas) > 1 and "".join(deltas) == text
    assert model.last_usage == {"prompt_tokens": 50, "completion_tokens": 15, "total_tokens": 65}
    assert model.last_finish_reason == "stop"
    req = fake_openai.chat_requests()[0].json
    assert req["stream"] is True and req["temperature"] == 0
    assert req["stream_options"] == {"include_usage": True}


def test_stream_dropped_midway_is_an_error(fake_openai):
    fake_openai.script(close(partial="The group met"))
    got: list[str] = []
    with pytest.raises(ProviderError, match="dropped the connection"):
        got.extend(make_model(fake_openai).stream(USER))
    assert "".join(got) == "The group met"


def test_stream_refusal(fake_openai):
    fake_openai.script(refusal("I will not summarise this."))
    with pytest.raises(ProviderError, match="refused: I will not summarise this."):
        list(make_model(fake_openai).stream(USER))


def test_stream_options_rejected_falls_back(fake_openai):
    fake_openai.script(error(400, {"error": {"message": "Unknown field stream_options"}}), ok("Moscow."))
    model = make_model(fake_openai)
    assert "".join(model.stream(USER)) == "Moscow."
    assert model.last_usage == {}
    assert "stream_options" not in fake_openai.chat_requests()[1].json


def test_responder_answers_from_the_prompt(fake_openai):
    def responder(request: dict) -> dict:
        prompt = request["messages"][-1]["content"]
        keys = sorted(set(re.findall(r'key="(S\d+)"', prompt)))
        return {
            "sentences": [{"text": "Cited.", "citations": [{"key": k, "quote": "x"} for k in keys]}],
            "abstained": False,
        }

    fake_openai.responder = responder
    prompt = load_prompt("answer")
    passages = "\n".join(format_passage(n, f"Passage {n}.") for n in (1, 2, 3))
    data, _ = complete_json(
        make_model(fake_openai),
        prompt.render(question="q?", passages=passages),
        ANSWER_SCHEMA,
        schema_name="answer",
    )
    assert [c["key"] for c in data["sentences"][0]["citations"]] == [citation_key(n) for n in (1, 2, 3)]


def test_unscripted_request_fails_loudly(fake_openai):
    with pytest.raises(ProviderError, match="nothing scripted"):
        make_model(fake_openai).complete(USER)


# --- structured output: re-ask once -----------------------------------------------------------


def test_malformed_json_then_good_reasks_once(fake_openai):
    fake_openai.script(ok("Sure! {'sentences': oops"), ok(GOOD))
    data, result = ask(make_model(fake_openai))
    assert data == GOOD
    assert result.usage == {"prompt_tokens": 22, "completion_tokens": 14, "total_tokens": 36}  # both calls
    _, second = fake_openai.chat_requests()
    msgs = second.json["messages"]
    assert msgs[:2] == USER
    assert msgs[2] == {"role": "assistant", "content": "Sure! {'sentences': oops"}
    assert msgs[3]["role"] == "user" and "not valid JSON" in msgs[3]["content"]
    assert second.json["response_format"]["type"] == "json_schema"


def test_malformed_twice_raises_schema_error(fake_openai):
    fake_openai.script(ok("not json"), ok("still not json"), ok(GOOD))
    with pytest.raises(SchemaError, match="even after one re-ask: the reply is not valid JSON"):
        ask(make_model(fake_openai))
    assert len(fake_openai.chat_requests()) == 2 and fake_openai.pending() == 1


def test_truncated_json_is_reasked_as_cut_off(fake_openai):
    fake_openai.script(truncated(), ok(GOOD))
    data, _ = ask(make_model(fake_openai))
    assert data == GOOD
    assert "cut off" in fake_openai.chat_requests()[1].json["messages"][-1]["content"]


def test_truncated_twice_raises(fake_openai):
    fake_openai.script(truncated(), truncated())
    with pytest.raises(SchemaError, match="cut off"):
        ask(make_model(fake_openai))


def test_schema_violation_names_the_path(fake_openai):
    bad = {"sentences": [{"text": "x", "citations": [{"key": "S1"}]}], "abstained": "no"}
    fake_openai.script(ok(bad), ok(bad))
    with pytest.raises(SchemaError) as info:
        ask(make_model(fake_openai))
    assert "sentences[0].citations[0]: missing required key 'quote'" in str(info.value)
    assert "abstained: expected boolean, got string" in str(info.value)
    assert "missing required key 'quote'" in fake_openai.chat_requests()[1].json["messages"][-1]["content"]


def test_validate_callback_problems_are_reasked(fake_openai):
    wrong = {"sentences": [{"text": "x", "citations": [{"key": "S9", "quote": "q"}]}], "abstained": False}
    fake_openai.script(ok(wrong), ok(GOOD))

    def validate(data: dict) -> list[str]:
        return [
            f"{c['key']} is not a passage key"
            for s in data["sentences"]
            for c in s["citations"]
            if c["key"] not in {"S1", "S2"}
        ]

    data, _ = ask(make_model(fake_openai), validate=validate)
    assert data == GOOD
    assert "S9 is not a passage key" in fake_openai.chat_requests()[1].json["messages"][-1]["content"]


def test_fenced_json_is_accepted(fake_openai):
    fake_openai.script(ok("```json\n" + json.dumps(GOOD) + "\n```"))
    assert ask(make_model(fake_openai))[0] == GOOD
    assert len(fake_openai.chat_requests()) == 1


def test_refusal_is_a_provider_error(fake_openai):
    fake_openai.script(refusal("I can't help with that request."))
    with pytest.raises(ProviderError, match="refused: I can't help with that request."):
        ask(make_model(fake_openai))


def test_response_format_rejected_falls_back_to_json_object(fake_openai, caplog):
    rejection = {
        "error": {
            "message": "response_format type json_schema is not supported by this model",
            "type": "invalid_request_error",
            "param": "response_format",
        }
    }
    fake_openai.script(error(400, rejection), ok(GOOD), ok(GOOD))
    model = make_model(fake_openai)
    with caplog.at_level(logging.WARNING, logger="rag.adapters.openai_chat"):
        assert ask(model)[0] == GOOD
    assert "json_object" in caplog.text
    _, second = fake_openai.chat_requests()
    assert second.json["response_format"] == {"type": "json_object"}
    system = second.json["messages"][0]["content"]
    assert system.startswith("Answer in JSON.") and '"abstained"' in system and "JSON schema" in system
    assert ask(model)[0] == GOOD  # remembered: the next call goes straight to json_object
    assert fake_openai.chat_requests()[2].json["response_format"] == {"type": "json_object"}


def test_other_bad_request_is_not_retried(fake_openai):
    fake_openai.script(error(400, {"error": {"message": "context length exceeded"}}))
    with pytest.raises(ProviderError, match=r"rejected the request \(400\): context length exceeded"):
        ask(make_model(fake_openai))
    assert len(fake_openai.chat_requests()) == 1


# --- transport failures and retries -----------------------------------------------------------


def test_429_with_retry_after_then_success(fake_openai):
    fake_openai.script(error(429, headers={"Retry-After": "1"}), ok(GOOD))
    start = time.monotonic()
    data, _ = ask(make_model(fake_openai, llm_max_retries=2))
    assert data == GOOD
    assert len(fake_openai.chat_requests()) == 2
    assert time.monotonic() - start >= 0.9  # the client waited as told


def test_429_persistent_says_rate_limited(fake_openai):
    fake_openai.script(*[error(429, headers={"retry-after-ms": "10"})] * 2)
    with pytest.raises(ProviderError, match=r"rate limited the request \(429\) after 1 retries"):
        make_model(fake_openai, llm_max_retries=1).complete(USER)
    assert len(fake_openai.chat_requests()) == 2


def test_500_persistent_gives_up_after_max_retries(fake_openai):
    fake_openai.script(*[error(500, headers={"retry-after-ms": "10"})] * 5)
    with pytest.raises(ProviderError, match="server error 500 after 2 retries"):
        make_model(fake_openai, llm_max_retries=2).complete(USER)
    assert len(fake_openai.chat_requests()) == 3
    assert fake_openai.pending() == 2


def test_slow_reply_times_out(fake_openai):
    fake_openai.script(delay(5, ok(GOOD)), delay(5, ok(GOOD)))
    start = time.monotonic()
    with pytest.raises(ProviderError, match=r"timed out after 1 s \(1 retries\)"):
        make_model(fake_openai, llm_timeout=1.0, llm_max_retries=1).complete(USER)
    assert time.monotonic() - start < 4.5
    assert len(fake_openai.chat_requests()) == 2


def test_bad_key_401(fake_openai):
    fake_openai.script(
        error(401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}})
    )
    with pytest.raises(ProviderError) as info:
        make_model(fake_openai).complete(USER)
    assert str(info.value) == (
        f"The LLM endpoint 127.0.0.1:{fake_openai.port} refused the API key (401): check OPENAI_API_KEY."
    )
    assert len(fake_openai.chat_requests()) == 1  # never retried


def test_connection_refused():
    port = free_port()
    model = build_chat_model(
        Settings(openai_api_key=KEY, openai_base_url=f"http://127.0.0.1:{port}/v1", llm_max_retries=0)
    )
    assert model is not None
    with pytest.raises(ProviderError, match=f"Could not connect to 127.0.0.1:{port}"):
        model.complete(USER)


def test_dropped_connection_is_retried_then_reported(fake_openai):
    fake_openai.script(close(), ok(GOOD))
    assert ask(make_model(fake_openai, llm_max_retries=1))[0] == GOOD
    fake_openai.script(close(), close())
    with pytest.raises(ProviderError, match="Could not connect"):
        make_model(fake_openai, llm_max_retries=1).complete(USER)


def test_malformed_http_body(fake_openai):
    fake_openai.script(malformed())
    with pytest.raises(ProviderError, match="not valid JSON"):
        make_model(fake_openai, llm_max_retries=0).complete(USER)


def test_key_never_leaks(fake_openai, caplog):
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}"}}
    fake_openai.script(
        error(401, echo),
        error(400, echo),
        error(403, echo),
        error(500, echo),
        error(500, echo),
        refusal(f"no {KEY}"),
        malformed(f"bad {KEY}"),
        delay(3),
        delay(3),
    )
    caplog.set_level(logging.DEBUG)
    model = make_model(fake_openai, llm_timeout=0.5, llm_max_retries=1)
    seen: list[BaseException] = []
    for _ in range(7):
        with pytest.raises(ProviderError) as info:
            model.complete(USER, json_schema=ANSWER_SCHEMA)
        seen.append(info.value)
    dead = build_chat_model(
        Settings(openai_api_key=KEY, openai_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_max_retries=0)
    )
    with pytest.raises(ProviderError) as info:
        list(dead.stream(USER))  # type: ignore[union-attr]
    seen.append(info.value)
    assert len({str(e) for e in seen}) == 8  # eight different failures
    for exc in seen:
        shown = str(exc) + repr(exc) + "".join(traceback.format_exception(exc))
        assert KEY not in shown
    assert "***" in str(seen[1])  # the server's echo was masked, not dropped
    assert KEY not in repr(model) and KEY not in str(model) and KEY not in repr(dead)
    assert caplog.records, "the openai client logs at DEBUG; the check must see those records"
    for record in caplog.records:
        assert KEY not in record.getMessage()
    assert fake_openai.chat_requests()[0].headers["authorization"] == f"Bearer {KEY}"


# --- the fake server's other endpoints (used by embedding tests) ------------------------------


def test_fake_embeddings_and_models(fake_openai):
    client = build_openai_client(Settings(openai_api_key=KEY, openai_base_url=fake_openai.base_url))
    res = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    assert [d.index for d in res.data] == [0, 1]
    assert res.data[0].embedding == pytest.approx(fake_vector("alpha"), abs=1e-6)
    assert sum(v * v for v in res.data[1].embedding) == pytest.approx(1.0, abs=1e-5)
    floats = client.embeddings.create(model="e", input="alpha", encoding_format="float", dimensions=8)
    assert floats.data[0].embedding == pytest.approx(fake_vector("alpha", 8))
    assert [m.id for m in client.models.list().data] == ["fake-model"]
    fake_openai.script(error(503, headers={"retry-after-ms": "10"}), endpoint="embeddings")
    assert len(client.embeddings.create(model="e", input=["x"]).data) == 1  # retried once, then vectors
    assert fake_openai.pending("embeddings") == 0


def test_abstain_sentinel_round_trip(fake_openai):
    reply = {
        "sentences": [{"text": f"{ABSTAIN} when the next meeting is.", "citations": []}],
        "abstained": True,
    }
    fake_openai.script(ok(reply))
    data, _ = ask(make_model(fake_openai))
    assert data["abstained"] is True and data["sentences"][0]["text"].startswith(ABSTAIN)
