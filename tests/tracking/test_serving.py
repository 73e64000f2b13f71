"""A logged NER model behind MLflow's own scoring server (the app `mlflow models serve` runs), driven
in-process: malformed requests get a 4xx with a message naming the problem, never a 500 or a stack
trace; a good request gets the spans of the model called directly."""

from __future__ import annotations

import asyncio
import json

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server

JSON = "application/json"
TEXTS = ["Shares of Acme Corp rose in Dallas .", "",
         "The Borrower shall repay the Loans to Harbor Point Capital on the Maturity Date . " * 6]
ONE_MB = "a " * 524_288  # 1,048,576 characters


@pytest.fixture(scope="module")
def logged(tmp_path_factory, tiny_encoder_dir):
    """(pyfunc model, its URI, the model folder it was logged from): logged once for the module with
    :func:`log_ner_model` (max_length 32) into a temporary SQLite store, loaded back."""
    from conftest import LABELS

    from findistill.models.loading import load_token_classifier, load_tokenizer
    from findistill.tracking.pyfunc import log_ner_model

    root = tmp_path_factory.mktemp("serving")
    model_dir = root / "ner"
    load_token_classifier(str(tiny_encoder_dir), LABELS).save_pretrained(model_dir)
    load_tokenizer(str(tiny_encoder_dir)).save_pretrained(model_dir)
    with pytest.MonkeyPatch.context() as mp:
        uri = f"sqlite:///{root / 'mlflow.db'}"
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(root)
        mlflow.set_tracking_uri(uri)
        try:
            with mlflow.start_run():
                model_uri = log_ner_model(model_dir, max_length=32, example_texts=["Acme rose ."])
            yield mlflow.pyfunc.load_model(model_uri), model_uri, model_dir
        finally:
            mlflow.set_tracking_uri(None)


@pytest.fixture
def app(logged, monkeypatch):
    """MLflow's scoring app around the logged model (``init`` marks the process as serving; undone after)."""
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")  # restored (unset) after the test
    return scoring_server.init(logged[0])


def post(app, body: bytes, content_type: str = JSON) -> tuple[int, str]:
    """(status, body text) of ``POST /invocations``, called through the ASGI interface (no httpx needed)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/invocations", "raw_path": b"/invocations", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())],
             "client": ("test", 1), "server": ("test", 80)}
    requests = [{"type": "http.request", "body": body, "more_body": False}]
    response: dict = {"body": b""}

    async def receive() -> dict:
        if requests:
            return requests.pop()
        await asyncio.sleep(3600)  # the client stays connected until the app answers (then it is cancelled)

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            response["status"] = message["status"]
        elif message["type"] == "http.response.body":
            response["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return response["status"], response["body"].decode()


def _json(payload) -> bytes:
    return json.dumps(payload).encode()


#: (case, body, content type, status, what the message says); ``ours``: the model's own one-line message,
#: which MLflow puts after "Failed to predict data '<the input>'. \nError: "
MALFORMED = [
    ("not JSON", b"text=Acme rose", JSON, 400, "Ensure that input is a valid JSON formatted string"),
    ("no input field", _json({"text": ["Acme rose ."]}), JSON, 400,
     "must be a JSON dictionary with exactly one of the input fields"),
    ("inputs without text", _json({"inputs": {"body": ["Acme"]}}), JSON, 400, "Model is missing inputs ['text']"),
    ("records without text", _json({"dataframe_records": [{"body": "Acme"}]}), JSON, 400,
     "Model is missing inputs ['text']"),
    ("records: a number", _json({"dataframe_records": [{"text": 5}]}), JSON, 400,
     "ours: text 0 is an int (5); expected a string"),
    ("records: a bool second", _json({"dataframe_records": [{"text": "Acme"}, {"text": True}]}), JSON, 400,
     "ours: text 1 is a bool (True); expected a string"),
    ("records: null", _json({"dataframe_records": [{"text": None}]}), JSON, 400,
     "ours: text 0 is null; expected a string"),
    ("inputs: empty list", _json({"inputs": {"text": []}}), JSON, 400,
     "ours: no texts: expected at least one string in the 'text' column"),
    ("split: no rows", _json({"dataframe_split": {"columns": ["text"], "data": []}}), JSON, 400,
     "ours: no texts: expected at least one string in the 'text' column"),
    ("records: empty list", _json({"dataframe_records": []}), JSON, 400, "Model is missing inputs ['text']"),
    ("inputs: 1 MB text", _json({"inputs": {"text": [ONE_MB]}}), JSON, 400,
     "ours: text 0 has 1,048,576 characters; at most 100,000 are accepted (model_config max_chars)"),
    ("records: 1 MB text", _json({"dataframe_records": [{"text": ONE_MB}]}), JSON, 400,
     "ours: text 0 has 1,048,576 characters; at most 100,000 are accepted (model_config max_chars)"),
    ("wrong content type", _json({"inputs": {"text": ["Acme rose ."]}}), "text/plain", 415,
     "This predictor only supports the following content types"),
]
#: MLflow 3.17 casts an ``inputs`` column to the signature's string type before the model sees it
#: (proto_json_utils.convert_data_type: np.array(values, str)), so 5 arrives as "5" and null as "None"
COERCED = [
    ("inputs: a number", _json({"inputs": {"text": [5]}}), JSON, 400, "ours: text 0 is an int (5); expected a string"),
    ("inputs: null", _json({"inputs": {"text": [None]}}), JSON, 400, "ours: text 0 is null; expected a string"),
]
_coerced = pytest.mark.xfail(strict=True, raises=AssertionError,
                             reason="MLflow turns 5 into '5' and null into 'None' for `inputs` with a string "
                                    "signature; the model cannot tell them apart")


@pytest.mark.parametrize(("body", "content_type", "status", "says"),
                         [pytest.param(*case[1:], id=case[0]) for case in MALFORMED]
                         + [pytest.param(*case[1:], id=case[0], marks=_coerced) for case in COERCED])
def test_malformed_request_gets_a_4xx_naming_the_problem(app, body, content_type, status, says):
    got_status, text = post(app, body, content_type)
    assert got_status == status, text[:500]
    assert "Traceback" not in text and "stack_trace" not in text
    if status == 415:
        assert says in text
        return
    error = json.loads(text)
    if says.startswith("ours: "):
        assert error["error_code"] == "INVALID_PARAMETER_VALUE"
        assert error["message"].rsplit("\nError: ", 1)[1] == says.removeprefix("ours: ")
    else:
        assert says in error["message"]


@pytest.mark.parametrize("payload", [{"inputs": {"text": TEXTS}}, {"dataframe_records": [{"text": t} for t in TEXTS]}],
                         ids=["inputs", "dataframe_records"])
def test_good_request_gets_the_spans_of_the_model_called_directly(app, logged, payload):
    status, text = post(app, _json(payload))
    assert status == 200, text[:500]
    direct = logged[0].predict(pd.DataFrame({"text": TEXTS}))
    assert json.loads(text) == {"predictions": direct}
    assert direct[0] and direct[1] == []  # an empty string is a text without entities


def test_round_trip_gives_the_spans_of_the_original_model(logged):
    from findistill.evaluation.predict import tag_texts
    from findistill.models.loading import load_token_classifier, load_tokenizer

    served, _, model_dir = logged
    original = load_token_classifier(str(model_dir)).eval()
    expected = tag_texts(original, load_tokenizer(str(model_dir)), TEXTS, max_length=32)
    assert expected[0] and max(span["start"] for span in expected[2]) > 300  # past the first 32-token chunk
    assert served.predict(pd.DataFrame({"text": TEXTS})) == expected


def test_max_chars_comes_from_the_model_config(logged):
    # MLflow drops load-time model_config keys the model was not logged with (log_ner_model logs no
    # max_chars), so the context is built here as MLflow builds it from a logged config
    from types import SimpleNamespace

    from findistill.tracking.pyfunc import NerPyfunc

    model_dir = logged[2]
    default, limited = NerPyfunc(), NerPyfunc()
    default.load_context(SimpleNamespace(model_config={"max_length": 32}, artifacts={"hf_model": str(model_dir)}))
    limited.load_context(SimpleNamespace(model_config={"max_length": 32, "max_chars": 10},
                                         artifacts={"hf_model": str(model_dir)}))
    assert default.max_chars == 100_000
    ten = pd.DataFrame({"text": ["Acme rose."]})  # 10 characters
    assert limited.predict(None, ten) == default.predict(None, ten)
    with pytest.raises(MlflowException, match=r"^text 1 has 11 characters; at most 10 are accepted "
                                              r"\(model_config max_chars\)$"):
        limited.predict(None, pd.DataFrame({"text": ["Acme rose.", "Acme rose ."]}))


@pytest.mark.parametrize(("model_input", "message"), [
    (["Acme", 5], "text 1 is an int (5); expected a string"),
    (pd.DataFrame({"text": [["Acme", None]]}), "text 1 is null; expected a string"),
    (pd.DataFrame({"text": [{"a": "b" * 100}]}), "text 0 is a dict ({'a': 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb...); "
                                                 "expected a string"),
    (pd.DataFrame({"body": ["Acme"]}), "no 'text' column (got ['body']); expected a 'text' column of strings"),
    ({"text": []}, "no texts: expected at least one string in the 'text' column"),
    (5, "the input is an int (5); expected a DataFrame with a 'text' column, a list of strings or a string"),
], ids=["number", "null in a list cell", "long dict", "no text column", "empty dict column", "a number"])
def test_bad_input_raises_one_line_naming_it(model_input, message):
    from findistill.tracking.pyfunc import _texts

    with pytest.raises(MlflowException) as raised:
        _texts(model_input, max_chars=100)
    assert raised.value.message == message
    assert raised.value.get_http_status_code() == 400


def test_max_chars_must_be_a_positive_whole_number():
    from findistill.tracking.pyfunc import _max_chars

    assert _max_chars("2000") == 2000
    for bad in (0, -1, "ten", 2.5, True, None):
        with pytest.raises(ValueError, match=r"^model_config max_chars must be a positive whole number"):
            _max_chars(bad)
