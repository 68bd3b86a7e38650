"""twelve.runtime.jsonc gives json's text and values without importing json (and re)."""
import json
import subprocess
import sys

import pytest

from twelve.runtime import jsonc

VALUES = [
    {"op": "rpc", "code": "1 + 1"},
    {"nonce": "ab" * 32, "proof": "cd" * 32, "ok": True, "busy": False, "none": None},
    {"value": "é ü 日本 \U0001F600 \x00 \"quoted\" \\ \n\t", "nested": [[], {}, [1, [2, {}]]]},
    {"ints": [0, -1, 2 ** 70, -(2 ** 64)], "floats": [0.1, -2.5e-300, 1e300, 3.0]},
    [1, "two", 3.0, None, True, False],
    "a string", 12, 1.5, None, True,
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_gives_the_text_of_json_dumps(value):
    assert jsonc.dumps(value) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", VALUES)
def test_loads_gives_the_value_of_json_loads(value):
    text = json.dumps(value, indent=2)
    assert jsonc.loads(text) == json.loads(text) == value
    assert jsonc.loads(text.encode()) == value
    assert jsonc.loads(f" \n\t{text}\r\n ") == value


def test_special_floats_round_trip_as_json_does():
    text = jsonc.dumps([float("inf"), float("-inf")])
    assert text == "[Infinity,-Infinity]"
    assert jsonc.loads(text) == [float("inf"), float("-inf")]
    assert jsonc.loads("NaN") != jsonc.loads("NaN")


@pytest.mark.parametrize("text", ["", "   ", "{", "{\"a\": }", "[1,]", "{\"a\" 1}", "tru",
                                  "{} {}", "[1] x", "\"unterminated", "\"bad \\q escape\"",
                                  "{'single': 1}", "\"\x01 control\"", "\u00a0 1"])
def test_what_json_refuses_is_a_value_error(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        jsonc.loads(text)


def test_bytes_that_are_not_utf8_are_a_value_error():
    with pytest.raises(ValueError):
        jsonc.loads(b'{"a": "\xff"}')


def test_what_json_cannot_encode_is_a_type_error():
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        jsonc.dumps({"a": {1, 2}})
    with pytest.raises(ValueError):
        looped = []
        looped.append(looped)
        jsonc.dumps(looped)


def test_importing_it_imports_neither_json_nor_re():
    code = ("import sys; from twelve.runtime import jsonc; jsonc.loads(jsonc.dumps({'a': [1]}));"
            "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-E", "-s", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
