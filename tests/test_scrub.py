"""POST /v1/scrub and GET /v1/scrubs/{receipt_id}, as CONTRACT section 6 states them."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from conftest import ADMIN, live_server, ready_client, start_redis
from fastapi.testclient import TestClient

from registry.api import scrub as scrub_api
from registry.api.scrub import BATCH_ROWS
from registry.config import Settings
from registry.embedded import RedisProcess

pytestmark = pytest.mark.cluster  # every test on one redis-server and on a Redis Cluster
SCRUB = "/v1/scrub"
A = "+12125551234"  # registered in most tests below
B = "+13105550199"
FREE = "+12125550000"  # never registered
PLAIN = {"content-type": "text/plain"}
CSV = {"content-type": "text/csv"}


def digest(e164s: list[str]) -> str:
    """The receipt checksum computed from the contract's words, not from the code."""
    return hashlib.sha256("".join(f"{n}\n" for n in e164s).encode()).hexdigest()


def register(client: TestClient, carrier: dict[str, str], number: str, **prefs: object) -> None:
    answer = client.put(f"/v1/registrations/{number}", json=prefs or None, headers=carrier)
    assert answer.status_code in (200, 201), answer.text


def account(
    client: TestClient, role: str = "operator", prefixes: list[str] | None = None
) -> tuple[str, dict[str, str]]:
    """A new account: its operator id and its Authorization header."""
    body: dict[str, object] = {"name": f"scrub test {role}", "role": role}
    if prefixes:
        body["prefixes"] = prefixes
    answer = client.post("/v1/operators", json=body, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    return created["operator_id"], {"Authorization": f"Bearer {created['api_key']}"}


def table(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.text, newline="")))


def scrub_plain(
    client: TestClient, headers: dict[str, str], lines: list[str], **query: str
) -> httpx.Response:
    body = "".join(f"{line}\n" for line in lines).encode()
    return client.post(SCRUB, content=body, params=query, headers={**headers, **PLAIN})


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return error


@pytest.fixture
def small(settings: Settings) -> Iterator[TestClient]:
    """An app with tiny limits: 3 rows a scrub, 200-byte bodies."""
    api = ready_client(
        settings.with_(max_scrub_rows=3, max_body_bytes=200, max_json_body_bytes=200)
    )
    yield api
    api.__exit__(None, None, None)


# --- JSON form ---------------------------------------------------------------------------


def test_json_counts_and_lists_blocked_per_input_in_order_with_duplicates(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, A)
    register(client, carrier, B)
    numbers = [A, FREE, B, "(212) 555-1234", "junk", A, "12", "310.555.0199"]
    answer = client.post(SCRUB, json={"numbers": numbers}, headers=operator)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["counts"] == {"total": 8, "callable": 1, "blocked": 5, "invalid": 2}
    assert body["blocked"] == [A, B, A, A, B]
    assert body["invalid"] == [
        {"index": 4, "input": "junk", "reason": "not_a_number"},
        {"index": 6, "input": "12", "reason": "too_short"},
    ]
    assert body["receipt_id"]


def test_json_integers_are_read_as_digits(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, A)
    answer = client.post(
        SCRUB, json={"numbers": [12125551234, 2125551234, 12125550000]}, headers=operator
    ).json()
    assert answer["counts"] == {"total": 3, "callable": 1, "blocked": 2, "invalid": 0}
    assert answer["blocked"] == [A, A]


def test_json_items_that_are_not_strings_are_invalid_not_errors(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, A)
    items: list[object] = [None, {"number": A}, [A], True, 12125551234.0, {}, A]
    answer = client.post(SCRUB, json={"numbers": items}, headers=operator)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["counts"] == {"total": 7, "callable": 0, "blocked": 1, "invalid": 6}
    assert body["blocked"] == [A]
    assert [item["index"] for item in body["invalid"]] == [0, 1, 2, 3, 4, 5]
    assert all(isinstance(item["reason"], str) and item["reason"] for item in body["invalid"])


def test_channel_and_category_change_the_answer_per_the_callable_rule(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    voice_only, allows_real_estate, full = "+12125550101", "+12125550102", "+12125550103"
    sms_only = "+12125550104"
    register(client, carrier, voice_only, channels=["voice"])
    register(client, carrier, allows_real_estate, allow_categories=[2])
    register(client, carrier, full)
    register(client, carrier, sms_only, channels=["sms"])
    numbers = [voice_only, allows_real_estate, full, sms_only, FREE]

    def blocked(**query: str) -> list[str]:
        answer = client.post(SCRUB, params=query, json={"numbers": numbers}, headers=operator)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["counts"]["callable"] + body["counts"]["blocked"] == len(numbers)
        return body["blocked"]

    # No channel asks about both: any registration blocks.
    assert blocked() == [voice_only, allows_real_estate, full, sms_only]
    assert blocked(channel="sms") == [allows_real_estate, full, sms_only]
    assert blocked(channel="voice") == [voice_only, allows_real_estate, full]
    assert blocked(category="2") == [voice_only, full, sms_only]
    assert blocked(category="3") == [voice_only, allows_real_estate, full, sms_only]
    assert blocked(channel="sms", category="2") == [full, sms_only]


def test_region_reads_national_numbers(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, "+442079460958")
    numbers = ["020 7946 0958", "(212) 555-1234"]
    default = client.post(SCRUB, json={"numbers": numbers}, headers=operator).json()
    assert default["counts"] == {"total": 2, "callable": 1, "blocked": 0, "invalid": 1}
    assert [item["index"] for item in default["invalid"]] == [0]
    british = client.post(
        SCRUB, params={"region": "gb"}, json={"numbers": numbers}, headers=operator
    ).json()
    assert british["blocked"] == ["+442079460958"]
    assert [item["index"] for item in british["invalid"]] == [1]


def test_a_json_body_may_carry_the_region_channel_and_category_instead_of_the_query(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    """A region in the body used to be ignored: `2079460958` was read as a US number and
    a registered British one came back callable."""
    register(client, carrier, "+442079460958")
    register(client, carrier, A, channels=["voice"], allow_categories=[2])
    british = client.post(
        SCRUB, json={"numbers": ["2079460958"], "region": "GB"}, headers=operator
    ).json()
    assert british["blocked"] == ["+442079460958"]
    sms = {"numbers": [A], "channel": "sms"}
    assert client.post(SCRUB, json=sms, headers=operator).json()["counts"]["callable"] == 1
    real_estate = {"numbers": [A], "category": 2}
    assert client.post(SCRUB, json=real_estate, headers=operator).json()["blocked"] == []
    banking = {"numbers": [A], "category": "1"}
    assert client.post(SCRUB, json=banking, headers=operator).json()["blocked"] == [A]
    # The same value in both places is fine; two different ones are refused.
    same = {"numbers": ["2079460958"], "region": "GB"}
    answer = client.post(SCRUB, params={"region": "gb"}, json=same, headers=operator)
    assert answer.json()["blocked"] == ["+442079460958"]
    both = client.post(
        SCRUB, params={"region": "US"}, json={"numbers": [A], "region": "GB"}, headers=operator
    )
    assert_error(both, 400, "conflicting_parameters")
    assert_error(
        client.post(SCRUB, json={"numbers": [A], "channel": "fax"}, headers=operator),
        400,
        "invalid_channel",
    )
    assert_error(
        client.post(SCRUB, json={"numbers": [A], "category": True}, headers=operator),
        400,
        "invalid_category",
    )


def test_unknown_fields_in_a_json_body_are_400_not_ignored(
    client: TestClient, operator: dict[str, str]
) -> None:
    answer = client.post(SCRUB, json={"numbers": [A], "chanel": "sms"}, headers=operator)
    error = assert_error(answer, 400, "invalid_request")
    assert "'chanel'" in error["message"] and error["details"] == {"unknown": ["chanel"]}


@pytest.mark.parametrize(
    "body",
    [
        b'{"numbers": ["+12125550001"], "channel": "sms", "channel": "voice"}',
        b'{"numbers": ["+12125550001"], "numbers": ["+12125550002"]}',
        b'{"numbers" : ["tel:+1-212-555-0001"], "region": "US", "region" : "GB"}',
        b'{"numbers": [{"a": 1, "a": 2}]}',
    ],
)
def test_a_json_body_that_names_a_key_twice_is_400_not_read_as_the_last(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str], body: bytes
) -> None:
    register(client, carrier, "+12125550001")
    headers = {**operator, "content-type": "application/json"}
    assert_error(client.post(SCRUB, content=body, headers=headers), 400, "repeated_key")


def test_colons_in_a_json_body_that_are_no_repeated_key_are_scrubbed(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, "+12125550001")
    body = b'{"numbers": ["tel:+1-212-555-0001", "a:b", {"x": 1}], "region": "US"}'
    headers = {**operator, "content-type": "application/json"}
    answer = client.post(SCRUB, content=body, headers=headers).json()
    assert answer["blocked"] == ["+12125550001"]
    assert [item["index"] for item in answer["invalid"]] == [1, 2]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"channel": "fax"}, "invalid_channel"),
        ({"category": "9"}, "invalid_category"),
        ({"category": "two"}, "invalid_category"),
        ({"region": "XX"}, "invalid_region"),
        ({"only": "blocked"}, "invalid_only"),
        ({"only": ""}, "invalid_only"),  # an unset variable, not "every row"
    ],
)
def test_bad_query_parameters_are_400(
    client: TestClient, operator: dict[str, str], query: dict[str, str], code: str
) -> None:
    answer = client.post(SCRUB, params=query, json={"numbers": [A]}, headers=operator)
    assert_error(answer, 400, code)


def test_numbers_outside_the_operators_prefixes_are_invalid_not_subscribed(
    client: TestClient, carrier: dict[str, str]
) -> None:
    register(client, carrier, A)
    register(client, carrier, B)  # registered, but outside the prefix: must not leak as blocked
    _, scoped = account(client, prefixes=["+1212"])
    answer = client.post(SCRUB, json={"numbers": [A, B, FREE, "junk"]}, headers=scoped).json()
    assert answer["counts"] == {"total": 4, "callable": 1, "blocked": 1, "invalid": 2}
    assert answer["blocked"] == [A]
    assert answer["invalid"][0] == {"index": 1, "input": B, "reason": "not_subscribed"}
    assert answer["invalid"][1]["index"] == 3
    rows = table(scrub_plain(client, scoped, [A, B, FREE]))
    assert rows[1:] == [[A, A, "blocked"], [B, "", "invalid"], [FREE, FREE, "callable"]]


@pytest.mark.parametrize("kind", ["text/plain", "text/csv"])
def test_a_text_body_with_a_nul_byte_is_a_400(
    client: TestClient, operator: dict[str, str], kind: str
) -> None:
    body = f"phone\n{A}\n{FREE}\x00\n".encode()
    answer = client.post(SCRUB, content=body, headers={**operator, "content-type": kind})
    error = assert_error(answer, 400, "invalid_encoding")
    assert "NUL byte, on line 3" in error["message"]


@pytest.mark.parametrize("tail", ["", "\u00e9"])  # plain ASCII, and the text path past it
def test_a_text_line_longer_than_a_csv_cell_is_a_400(
    client: TestClient, operator: dict[str, str], tail: str
) -> None:
    """It came back whole in the answer's input column: a 100 MB line made a 100 MB echo."""
    headers = {**operator, "content-type": "text/plain"}
    fair = f"{A}\n{'9' * (131_072 - len(tail.encode()))}{tail}\n".encode()  # at the limit
    assert client.post(SCRUB, content=fair, headers=headers).status_code == 200
    long = f"{A}\n\n{'x' * 131_073}{tail}\n{FREE}\n".encode()
    error = assert_error(client.post(SCRUB, content=long, headers=headers), 400, "invalid_list")
    assert "line 2 of those not blank" in error["message"]
    assert error["details"] == {"limit_bytes": 131_072}


def test_a_json_body_may_start_with_a_byte_order_mark(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    """As a text or CSV body may (Windows tools write one); RFC 8259 lets a reader ignore it."""
    register(client, carrier, A)
    json_type = {"content-type": "application/json"}
    body = b"\xef\xbb\xbf" + f'{{"numbers": ["{A}", "{FREE}"]}}'.encode()
    answer = client.post(SCRUB, content=body, headers={**operator, **json_type})
    assert answer.status_code == 200, answer.text
    assert answer.json()["blocked"] == [A]
    # And on the other endpoints that take JSON.
    prefs = b"\xef\xbb\xbf" + b'{"channels": ["sms"]}'
    put = client.put(f"/v1/registrations/{FREE}", content=prefs, headers={**carrier, **json_type})
    assert put.status_code == 201, put.text
    assert put.json()["channels"] == ["sms"]


def test_body_that_is_not_json_is_400_invalid_json(
    client: TestClient, operator: dict[str, str]
) -> None:
    answer = client.post(
        SCRUB,
        content=b'{"numbers": [',
        headers={**operator, "content-type": "application/json"},
    )
    assert_error(answer, 400, "invalid_json")


@pytest.mark.parametrize(
    "document",
    [b'["+12125551234"]', b'{"numbers": "+12125551234"}', b'{"nums": []}', b'"+1212"', b"null"],
)
def test_json_of_the_wrong_shape_is_400(
    client: TestClient, operator: dict[str, str], document: bytes
) -> None:
    answer = client.post(
        SCRUB, content=document, headers={**operator, "content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"


def test_more_rows_than_the_limit_is_413_too_many_rows(small: TestClient) -> None:
    _, key = account(small)
    ok = small.post(SCRUB, json={"numbers": [A, B, FREE]}, headers=key)
    assert ok.status_code == 200, ok.text
    over = small.post(SCRUB, json={"numbers": [A, B, FREE, A]}, headers=key)
    assert_error(over, 413, "too_many_rows")
    # Blank lines are not rows: three numbers among blank lines fit.
    fits = small.post(
        SCRUB, content=f"{A}\n\n{B}\n  \n{FREE}\n\n".encode(), headers={**key, **PLAIN}
    )
    assert len(table(fits)) == 4
    assert_error(scrub_plain(small, key, [A, B, FREE, A]), 413, "too_many_rows")
    csv_over = small.post(
        SCRUB, content=f"phone\n{A}\n{B}\n{FREE}\n{A}\n".encode(), headers={**key, **CSV}
    )
    assert_error(csv_over, 413, "too_many_rows")


def test_body_over_the_byte_limit_is_413_body_too_large(small: TestClient) -> None:
    _, key = account(small)
    big_text = (A + " " * 300).encode()  # one row, but 300-odd bytes
    assert_error(
        small.post(SCRUB, content=big_text, headers={**key, **PLAIN}), 413, "body_too_large"
    )
    big_json = b'{"numbers": ["' + b" " * 250 + b'"]}'
    assert_error(
        small.post(SCRUB, content=big_json, headers={**key, "content-type": "application/json"}),
        413,
        "body_too_large",
    )

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(10):
            yield (A + "\n").encode() * 3

    assert_error(
        small.post(SCRUB, content=chunked(), headers={**key, **PLAIN}), 413, "body_too_large"
    )


def test_unsupported_content_type_is_415(client: TestClient, operator: dict[str, str]) -> None:
    answer = client.post(
        SCRUB, content=b"<numbers/>", headers={**operator, "content-type": "application/xml"}
    )
    assert_error(answer, 415, "unsupported_media_type")


@pytest.mark.parametrize("charset", ["latin-1", "ISO-8859-1", '"windows-1252"'])
def test_a_charset_other_than_utf8_is_415(
    client: TestClient, operator: dict[str, str], charset: str
) -> None:
    for kind in ("text/plain", "text/csv"):
        answer = client.post(
            SCRUB,
            content=b"+12125551234\n",
            headers={**operator, "content-type": f"{kind}; charset={charset}"},
        )
        assert_error(answer, 415, "unsupported_charset")


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "us-ascii", '"utf-8"'])
def test_utf8_and_ascii_charsets_are_read(
    client: TestClient, operator: dict[str, str], charset: str
) -> None:
    answer = client.post(
        SCRUB,
        content=b"+12125551234\n",
        headers={**operator, "content-type": f"text/plain; charset={charset}"},
    )
    assert answer.status_code == 200, answer.text


def test_scrub_needs_an_operator_key(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    body = {"numbers": [A]}
    assert_error(client.post(SCRUB, json=body), 401, "missing_key")
    unknown = {"Authorization": "Bearer dnc_not-a-key"}
    assert_error(client.post(SCRUB, json=body, headers=unknown), 401, "unknown_key")
    assert_error(client.post(SCRUB, json=body, headers=carrier), 403, "forbidden")
    assert client.post(SCRUB, json=body, headers=operator).status_code == 200
    assert client.post(SCRUB, json=body, headers=ADMIN).status_code == 200


# --- text/plain --------------------------------------------------------------------------


def test_plain_answers_every_non_blank_line_in_order(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, A)
    body = f"\n{A}\r\n   \n  (212) 555-0000  \n\njunk\n{A}\n12\n\n".encode()
    answer = client.post(SCRUB, content=body, headers={**operator, **PLAIN})
    assert answer.headers["x-scrub-receipt"]
    assert table(answer) == [
        ["input", "number", "status"],
        [A, A, "blocked"],
        ["(212) 555-0000", FREE, "callable"],
        ["junk", "", "invalid"],
        [A, A, "blocked"],
        ["12", "", "invalid"],
    ]


def test_plain_a_line_is_a_row_whatever_other_separators_it_holds(
    client: TestClient, operator: dict[str, str]
) -> None:
    # Only line ends split rows; form feeds and Unicode separators stay inside the row.
    lines = [f"{A}\x0c{FREE}", f"{FREE}\u2028x", f"{A}\x85", FREE]
    rows = table(scrub_plain(client, operator, lines))
    assert [row[0] for row in rows[1:]] == [line.strip() for line in lines]
    assert rows[-1] == [FREE, FREE, "callable"]


def test_plain_inputs_with_commas_and_quotes_come_back_quoted(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, A)
    lines = ['"(212) 555-1234"', "+1 (212) 555-0000,", 'say "hi", then "bye"', '"', ","]
    rows = table(scrub_plain(client, operator, lines))
    assert rows[1:] == [
        ['"(212) 555-1234"', A, "blocked"],
        ["+1 (212) 555-0000,", FREE, "callable"],
        ['say "hi", then "bye"', "", "invalid"],
        ['"', "", "invalid"],
        [",", "", "invalid"],
    ]


def test_plain_only_callable_keeps_just_the_callable_rows(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, A)
    lines = [A, FREE, "junk", "+12125550001", A, "(212) 555-0002"]
    answer = scrub_plain(client, operator, lines, only="callable")
    assert table(answer) == [
        ["input", "number", "status"],
        [FREE, FREE, "callable"],
        ["+12125550001", "+12125550001", "callable"],
        ["(212) 555-0002", "+12125550002", "callable"],
    ]
    receipt = client.get(f"/v1/scrubs/{answer.headers['x-scrub-receipt']}", headers=operator)
    assert receipt.json()["counts"] == {"total": 6, "callable": 3, "blocked": 2, "invalid": 1}


@pytest.mark.parametrize("kind", [PLAIN, CSV])
def test_a_body_that_is_not_utf8_is_400(
    client: TestClient, operator: dict[str, str], kind: dict[str, str]
) -> None:
    body = b"phone\n+12125551234\n\xff\xfe212 555 0000\n"
    error = assert_error(
        client.post(SCRUB, content=body, headers={**operator, **kind}), 400, "invalid_encoding"
    )
    assert "(Excel: save as CSV UTF-8" in error["message"]  # the way out, for most such files


def test_an_empty_list_gets_a_header_and_an_empty_receipt(
    client: TestClient, operator: dict[str, str]
) -> None:
    answer = client.post(SCRUB, content=b"\n\n", headers={**operator, **PLAIN})
    assert table(answer) == [["input", "number", "status"]]
    receipt = client.get(f"/v1/scrubs/{answer.headers['x-scrub-receipt']}", headers=operator)
    assert receipt.json()["counts"] == {"total": 0, "callable": 0, "blocked": 0, "invalid": 0}
    assert receipt.json()["sha256"] == digest([])


# --- text/csv ----------------------------------------------------------------------------


def test_csv_keeps_the_input_columns_and_adds_number_and_status(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, A)
    body = (
        "name,phone,note\n"
        'Ann,(212) 555-1234,"likes ""quotes"", commas"\n'
        "\n"
        "Bob,212.555.0000,\n"
        'Cy,"not, a number",x\n'
    )
    answer = client.post(
        SCRUB, params={"column": "phone"}, content=body.encode(), headers={**operator, **CSV}
    )
    assert answer.headers["x-scrub-receipt"]
    assert table(answer) == [
        ["name", "phone", "note", "number", "status"],
        ["Ann", "(212) 555-1234", 'likes "quotes", commas', A, "blocked"],
        ["Bob", "212.555.0000", "", FREE, "callable"],
        ["Cy", "not, a number", "x", "", "invalid"],
    ]


def test_csv_phone_column_defaults_to_the_first(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, A)
    body = f"mobile,home\n{A},{FREE}\n{FREE},{A}\n".encode()
    rows = table(client.post(SCRUB, content=body, headers={**operator, **CSV}))
    assert rows == [
        ["mobile", "home", "number", "status"],
        [A, FREE, A, "blocked"],
        [FREE, A, FREE, "callable"],
    ]
    by_home = client.post(
        SCRUB, params={"column": "home"}, content=body, headers={**operator, **CSV}
    )
    assert [row[-2:] for row in table(by_home)[1:]] == [[FREE, "callable"], [A, "blocked"]]


def test_csv_unknown_column_is_400(client: TestClient, operator: dict[str, str]) -> None:
    body = f"mobile,home\n{A},{FREE}\n".encode()
    answer = client.post(
        SCRUB, params={"column": "phone"}, content=body, headers={**operator, **CSV}
    )
    error = assert_error(answer, 400, "unknown_column")
    assert error["details"]["columns"] == ["mobile", "home"]
    assert error["message"] == "no column 'phone' in the header; it has 'mobile', 'home'"


@pytest.mark.parametrize("column", ["", " "])
def test_an_empty_column_name_is_400_not_the_first_column(
    client: TestClient, operator: dict[str, str], column: str
) -> None:
    """An unset variable in a script; the first column would be washed by mistake."""
    body = f"name,phone\nAnn,{A}\n".encode()
    answer = client.post(
        SCRUB, params={"column": column}, content=body, headers={**operator, **CSV}
    )
    assert_error(answer, 400, "unknown_column")


def test_csv_column_matches_header_cells_trimmed_as_the_cli_does(
    client: TestClient, operator: dict[str, str]
) -> None:
    body = f"name , phone \nAnn,{A}\n".encode()
    answer = client.post(
        SCRUB, params={"column": "phone"}, content=body, headers={**operator, **CSV}
    )
    assert answer.status_code == 200, answer.text
    assert table(answer)[1][-2] == A  # the number read from " phone ", not from "name "
    twice = f" phone,phone\n{A},{FREE}\n".encode()
    answer = client.post(
        SCRUB, params={"column": "phone"}, content=twice, headers={**operator, **CSV}
    )
    assert answer.status_code == 200  # the exact name comes first
    assert table(answer)[1][-2] == FREE


@pytest.mark.parametrize("kind", ["text/plain", "application/json"])
def test_a_column_for_a_body_without_columns_is_400(
    client: TestClient, operator: dict[str, str], kind: str
) -> None:
    body = f"{A}\n" if kind == "text/plain" else f'{{"numbers": ["{A}"]}}'
    answer = client.post(
        SCRUB, params={"column": "phone"}, content=body, headers={**operator, "Content-Type": kind}
    )
    assert_error(answer, 400, "invalid_column")


def test_only_callable_on_a_json_scrub_is_400_not_ignored(
    client: TestClient, operator: dict[str, str]
) -> None:
    """A JSON answer has no list of callable rows to filter: ignored, a caller would read
    its full `blocked` list as the filtered one."""
    answer = client.post(
        SCRUB, params={"only": "callable"}, json={"numbers": [A]}, headers=operator
    )
    error = assert_error(answer, 400, "invalid_only")
    assert "text/plain" in error["message"]
    plain = client.post(
        SCRUB, params={"only": "callable"}, content=f"{A}\n", headers={**operator, **PLAIN}
    )
    assert plain.status_code == 200


def test_csv_column_named_twice_is_400_not_a_guess(
    client: TestClient, operator: dict[str, str]
) -> None:
    body = f"phone,name,phone\n{A},Ann,{FREE}\n".encode()
    answer = client.post(
        SCRUB, params={"column": "phone"}, content=body, headers={**operator, **CSV}
    )
    error = assert_error(answer, 400, "ambiguous_column")
    assert "2 columns are named 'phone'" in error["message"]
    # Another, unique column of the same table is fine.
    body = f"phone,name,phone,mobile\n{A},Ann,{FREE},{A}\n".encode()
    fine = client.post(
        SCRUB, params={"column": "mobile"}, content=body, headers={**operator, **CSV}
    )
    assert fine.status_code == 200


def test_csv_rows_shorter_than_the_header_keep_number_and_status_in_their_columns(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, A)
    body = f"name,phone,note\nAnn,{A}\nBob\nCy,{FREE},x\n".encode()
    answer = client.post(
        SCRUB, params={"column": "phone"}, content=body, headers={**operator, **CSV}
    )
    table(answer)
    rows = list(csv.DictReader(io.StringIO(answer.text, newline="")))
    assert [(r["name"], r["phone"], r["number"], r["status"]) for r in rows] == [
        ("Ann", A, A, "blocked"),
        ("Bob", "", "", "invalid"),
        ("Cy", FREE, FREE, "callable"),
    ]
    assert all(None not in row for row in rows)  # no row longer than the header


def test_csv_trailing_empty_cells_are_dropped_and_extra_values_refused(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, A)
    body = f"name,phone\nAnn,{A},\nBob,{FREE},, \n".encode()
    answer = client.post(
        SCRUB, params={"column": "phone"}, content=body, headers={**operator, **CSV}
    )
    table(answer)
    assert answer.text.splitlines() == [
        "name,phone,number,status",
        f"Ann,{A},{A},blocked",
        f"Bob,{FREE},{FREE},callable",
    ]
    body = f"name,phone\nAnn,{A}\nBob,{FREE},+12125550000\n".encode()
    answer = client.post(
        SCRUB, params={"column": "phone"}, content=body, headers={**operator, **CSV}
    )
    error = assert_error(answer, 400, "invalid_csv")
    assert error["details"] == {"row": 2, "cells": 3, "columns": 2}


@pytest.mark.parametrize(
    ("body", "params"),
    [
        (f"{A}\n{FREE}\n", {}),  # a dial list of numbers alone, saved as .csv
        (f"(212) 555-1234,Ann\n{FREE},Bob\n", {"region": "US"}),  # national, first column
        (f"Ann,{A}\nBob,{FREE}\n", {"column": A}),  # named by the number it holds
    ],
    ids=["numbers-alone", "national", "named-by-number"],
)
def test_a_csv_whose_first_row_is_a_number_is_refused_not_a_row_short(
    client: TestClient,
    carrier: dict[str, str],
    operator: dict[str, str],
    body: str,
    params: dict[str, str],
) -> None:
    """Read as the header, the first number would be neither scrubbed nor listed, and
    the receipt would count one row less, with no word said."""
    register(client, carrier, A)
    answer = client.post(SCRUB, params=params, content=body, headers={**operator, **CSV})
    error = assert_error(answer, 400, "invalid_csv")
    assert error["message"].startswith("the first row is data, not a header")
    # A header whose cells merely have digits is a header.
    fine = client.post(SCRUB, content=f"phone 1,id 2024\n{A},7\n", headers={**operator, **CSV})
    assert table(fine) == [["phone 1", "id 2024", "number", "status"], [A, "7", A, "blocked"]]


def test_a_csv_cell_past_the_readers_limit_is_named_as_such(
    client: TestClient, operator: dict[str, str]
) -> None:
    body = f"phone,note\n{A},{'x' * 140_000}\n".encode()
    error = assert_error(
        client.post(SCRUB, content=body, headers={**operator, **CSV}), 400, "invalid_csv"
    )
    assert "a cell is over 131072 characters" in error["message"]


def test_csv_only_callable(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    register(client, carrier, A)
    body = f"phone,id\n{A},1\n{FREE},2\njunk,3\n".encode()
    answer = client.post(
        SCRUB, params={"only": "callable"}, content=body, headers={**operator, **CSV}
    )
    assert table(answer) == [["phone", "id", "number", "status"], [FREE, "2", FREE, "callable"]]


# --- receipts ----------------------------------------------------------------------------


def test_receipt_of_a_streamed_scrub(client: TestClient, carrier: dict[str, str]) -> None:
    register(client, carrier, A)
    operator_id, key = account(client)
    before = datetime.now(UTC).replace(microsecond=0)
    answer = scrub_plain(client, key, [A, "junk", "(212) 555-0000", A, "12", "+442079460958"])
    table(answer)  # read in full
    receipt_id = answer.headers["x-scrub-receipt"]
    receipt = client.get(f"/v1/scrubs/{receipt_id}", headers=key)
    assert receipt.status_code == 200, receipt.text
    body = receipt.json()
    assert set(body) == {
        "receipt_id",
        "operator",
        "created_at",
        "counts",
        "sha256",
        "registry_version",
    }
    assert body["receipt_id"] == receipt_id
    assert body["operator"] == operator_id
    created = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert before <= created <= datetime.now(UTC)
    assert body["counts"] == {"total": 6, "callable": 2, "blocked": 2, "invalid": 2}
    assert body["sha256"] == digest([A, FREE, A, "+442079460958"])
    assert isinstance(body["registry_version"], int) and body["registry_version"] >= 1


def test_receipt_of_a_json_scrub(client: TestClient, carrier: dict[str, str]) -> None:
    register(client, carrier, B)
    operator_id, key = account(client)
    answer = client.post(SCRUB, json={"numbers": [FREE, None, B, "310-555-0199"]}, headers=key)
    body = answer.json()
    receipt = client.get(f"/v1/scrubs/{body['receipt_id']}", headers=key).json()
    assert receipt["operator"] == operator_id
    assert (
        receipt["counts"]
        == body["counts"]
        == {
            "total": 4,
            "callable": 1,
            "blocked": 2,
            "invalid": 1,
        }
    )
    assert receipt["sha256"] == digest([FREE, B, B])


def test_receipt_is_private_to_its_operator(client: TestClient, operator: dict[str, str]) -> None:
    receipt_id = client.post(SCRUB, json={"numbers": [A]}, headers=operator).json()["receipt_id"]
    _, other = account(client)
    assert_error(client.get(f"/v1/scrubs/{receipt_id}", headers=other), 404, "receipt_not_found")
    assert_error(
        client.get("/v1/scrubs/scr_nonexistent", headers=operator), 404, "receipt_not_found"
    )
    assert client.get(f"/v1/scrubs/{receipt_id}", headers=operator).status_code == 200
    assert client.get(f"/v1/scrubs/{receipt_id}", headers=ADMIN).status_code == 200
    assert client.get(f"/v1/scrubs/{receipt_id}").status_code == 401


def test_receipt_registry_version_follows_registrations(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    def version() -> int:
        answer = scrub_plain(client, operator, [A])
        receipt = client.get(f"/v1/scrubs/{answer.headers['x-scrub-receipt']}", headers=operator)
        return receipt.json()["registry_version"]

    first = version()
    assert version() == first
    register(client, carrier, A)
    second = version()
    assert second > first
    assert client.delete(f"/v1/registrations/{A}", headers=carrier).status_code == 200
    assert version() > second


# --- streaming in batches ----------------------------------------------------------------


def test_a_scrub_of_several_batches_comes_back_whole_and_in_order(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    total = BATCH_ROWS + 4_464
    lines = [f"+1212{200 + i // 10_000:03d}{i % 10_000:04d}" for i in range(total)]
    junk = {5, BATCH_ROWS - 1, BATCH_ROWS, total - 2}
    for i in junk:
        lines[i] = f"junk {i}"
    registered = [3, 40_000, BATCH_ROWS - 2, BATCH_ROWS + 1, total - 1]
    for i in registered:
        register(client, carrier, lines[i])
    answer = scrub_plain(client, operator, lines)
    rows = table(answer)
    assert rows[0] == ["input", "number", "status"]
    assert len(rows) == total + 1
    expected_status = ["callable"] * total
    for i in junk:
        expected_status[i] = "invalid"
    for i in registered:
        expected_status[i] = "blocked"
    assert [row[0] for row in rows[1:]] == lines
    assert [row[2] for row in rows[1:]] == expected_status
    assert [row[1] for row in rows[1:]] == ["" if i in junk else n for i, n in enumerate(lines)]
    receipt = client.get(f"/v1/scrubs/{answer.headers['x-scrub-receipt']}", headers=operator)
    assert receipt.json()["counts"] == {
        "total": total,
        "callable": total - len(junk) - len(registered),
        "blocked": len(registered),
        "invalid": len(junk),
    }
    assert receipt.json()["sha256"] == digest([n for i, n in enumerate(lines) if i not in junk])


@pytest.mark.parametrize("end", ["\n", ""])
@pytest.mark.parametrize("scope", ["all", "prefixed"])
@pytest.mark.parametrize("junk", [False, True])
def test_a_list_written_in_e164_answers_from_its_own_lines(
    client: TestClient, carrier: dict[str, str], junk: bool, scope: str, end: str
) -> None:
    """One width, one line each, in E.164: the answer's numbers and the receipt's
    checksum are read from the body itself (rows.written_digits, written_lines). Junk
    of the same width and rows outside the operator's prefixes are still blank."""
    lines = [
        f"+1{area}{200 + i // 100:03d}{i % 10_000:04d}" for area in (212, 415) for i in range(3000)
    ]
    if junk:
        lines[7] = lines[2999] = "+1000" + lines[7][5:]  # the same width, no such area code
    for i in (3, 3000, 5999):
        register(client, carrier, lines[i])
    _, operator = account(client, prefixes=["+1212"] if scope == "prefixed" else None)
    body = ("\n".join(lines) + end).encode()
    answer = client.post(SCRUB, content=body, headers={**operator, **PLAIN})
    rows = table(answer)[1:]
    outside = {i for i, n in enumerate(lines) if scope == "prefixed" and not n.startswith("+1212")}
    blank = {i for i, n in enumerate(lines) if n.startswith("+1000")} | outside
    assert [row[0] for row in rows] == lines
    assert [row[1] for row in rows] == ["" if i in blank else n for i, n in enumerate(lines)]
    blocked = {3, 3000, 5999} - blank
    assert [row[2] for row in rows] == [
        "invalid" if i in blank else "blocked" if i in blocked else "callable"
        for i in range(len(lines))
    ]
    receipt = client.get(f"/v1/scrubs/{answer.headers['x-scrub-receipt']}", headers=operator)
    assert receipt.json()["sha256"] == digest([n for i, n in enumerate(lines) if i not in blank])


# --- Redis lost --------------------------------------------------------------------------


class PrivateRedis:
    """A durable redis-server of one test's own, which the test may kill and restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.servers = [start_redis(directory, durable=True)]

    @property
    def server(self) -> RedisProcess:
        return self.servers[-1]

    def restart(self) -> RedisProcess:
        """A new redis-server on the same files: it reloads what the last one had stored."""
        self.servers.append(start_redis(self.directory, durable=True))
        return self.server


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    private = PrivateRedis(tmp_path / "redis")
    yield private
    for server in private.servers:
        server.stop()


@pytest.mark.single_node  # its own server, killed: see test_fail_closed for the Cluster
def test_a_scrub_while_redis_is_down_is_503(
    settings: Settings, private_redis: PrivateRedis
) -> None:
    server = private_redis.server
    api = ready_client(settings.with_(redis_url=server.url))
    try:
        _, key = account(api)
        assert api.post(SCRUB, json={"numbers": [A]}, headers=key).status_code == 200
        server.kill()
        for answer in (
            api.post(SCRUB, json={"numbers": [A]}, headers=key),
            scrub_plain(api, key, [A, FREE]),
            api.post(SCRUB, content=f"phone\n{A}\n".encode(), headers={**key, **CSV}),
        ):
            assert_error(answer, 503, "redis_unavailable")
            assert "callable" not in answer.text
    finally:
        api.__exit__(None, None, None)


@pytest.mark.slow
@pytest.mark.single_node  # its own server, killed and restarted
def test_redis_lost_mid_stream_cuts_the_answer_off_and_stores_no_receipt(
    settings: Settings, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server = private_redis.server
    lines = [f"+1212555{i % 100:04d}" for i in range(BATCH_ROWS + 10)]
    body = "".join(f"{line}\n" for line in lines).encode()
    with (
        live_server(settings.with_(redis_url=server.url)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        created = http.post(
            "/v1/operators", json={"name": "cut", "role": "operator"}, headers=ADMIN
        )
        key = {"Authorization": f"Bearer {created.json()['api_key']}"}

        # A scrub that completes: its receipt is readable the moment the body has been read.
        whole = http.post(SCRUB, content=body, headers={**key, **PLAIN})
        assert whole.status_code == 200
        assert whole.text.count("\n") == len(lines) + 1
        whole_id = whole.headers["x-scrub-receipt"]
        assert http.get(f"/v1/scrubs/{whole_id}", headers=key).status_code == 200

        # Hold writes, so the receipt (the scrub's one write) cannot land before Redis dies.
        pause = redis.Redis.from_url(server.url)
        pause.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        pause.close()
        received = b""
        with http.stream("POST", SCRUB, content=body, headers={**key, **PLAIN}) as response:
            assert response.status_code == 200
            cut_id = response.headers["x-scrub-receipt"]
            chunks = response.iter_raw()
            while received.count(b"\n") < BATCH_ROWS + 1:  # the header and the first batch
                received += next(chunks)
            server.kill()
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in chunks:
                    received += chunk
        assert received.count(b"\n") < len(lines) + 1
        # One line says why, naming the receipt; no traceback, as for a bug of ours.
        said = [r.getMessage() for r in caplog.records if r.name == "dnc.api"]
        assert any(f"scrub {cut_id}" in line and "cut off" in line for line in said), said
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"

    # Restarted from its append-only file, Redis holds the first receipt but not the second.
    revived = private_redis.restart()
    api = ready_client(settings.with_(redis_url=revived.url))
    try:
        assert api.get(f"/v1/scrubs/{whole_id}", headers=key).status_code == 200
        assert_error(api.get(f"/v1/scrubs/{cut_id}", headers=key), 404, "receipt_not_found")
    finally:
        api.__exit__(None, None, None)


def test_csv_with_a_quote_never_closed_is_400_not_rows_swallowed(
    client: TestClient, carrier: dict[str, str], operator: dict[str, str]
) -> None:
    """Read leniently, the rows after an unclosed quote would become one cell: missing from
    the answer, neither callable nor blocked, and nobody told."""
    register(client, carrier, A)
    body = f'phone,name\n"{FREE},Ann\n{A},Bob\n'.encode()
    answer = client.post(SCRUB, content=body, headers={**operator, **CSV})
    error = assert_error(answer, 400, "invalid_csv")
    assert "quote" in error["message"]
    # The line its row began on, where `dnc load` names it: not the last, where the
    # reader gave up.
    assert "at line 2:" in error["message"] and error["details"]["line"] == 2
    # Quotes inside a cell, and quoted cells with commas, are still read.
    body = f'phone,name\n{A},"Ann, ""the"" 2nd"\n{FREE},O"Neil\n'.encode()
    assert table(client.post(SCRUB, content=body, headers={**operator, **CSV}))[1:] == [
        [A, 'Ann, "the" 2nd', A, "blocked"],
        [FREE, 'O"Neil', FREE, "callable"],
    ]


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate, gzip"])
def test_a_compressed_body_is_415_naming_the_encoding(
    client: TestClient, operator: dict[str, str], encoding: str
) -> None:
    import gzip

    body = gzip.compress(f"{A}\n".encode())
    answer = client.post(
        SCRUB,
        content=body,
        headers={**operator, "Content-Type": "text/plain", "Content-Encoding": encoding},
    )
    error = assert_error(answer, 415, "unsupported_content_encoding")
    assert encoding in error["message"]
    plain = client.post(
        SCRUB,
        content=f"{A}\n",
        headers={**operator, "Content-Type": "text/plain", "Content-Encoding": "identity"},
    )
    assert plain.status_code == 200


def test_a_json_integer_past_64_bits_is_echoed_with_its_digits(
    client: TestClient, operator: dict[str, str]
) -> None:
    body = b'{"numbers": [99999999999999999999999999999, 1.5, [[[1]]], 12125551234]}'
    answer = client.post(
        SCRUB, content=body, headers={**operator, "Content-Type": "application/json"}
    ).json()
    invalid = {row["index"]: (row["input"], row["reason"]) for row in answer["invalid"]}
    assert invalid[0] == ("99999999999999999999999999999", "too_long")
    assert invalid[1][1] == invalid[2][1] == "not_a_number"
    assert answer["counts"]["total"] == 4 and 3 not in invalid


def test_an_item_nested_past_what_orjson_writes_is_invalid_not_a_500(
    client: TestClient, operator: dict[str, str]
) -> None:
    deep = b"[" * 300 + b"1" + b"]" * 300
    body = b'{"numbers": [' + deep + b', {"a": ' + deep + b"}, 12125551234]}"
    answer = client.post(
        SCRUB, content=body, headers={**operator, "Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    invalid = {row["index"]: row for row in answer.json()["invalid"]}
    assert sorted(invalid) == [0, 1]
    assert invalid[0]["input"] == "[" * 64 and invalid[0]["reason"] == "not_a_number"


def test_a_csv_header_too_wide_or_a_table_too_big_is_refused_before_the_rows_are_read(
    client: TestClient, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every answer row is as wide as the header: a header of 100,000 commas over 1,500
    short rows, a 120 KB body, made a 150 MB answer and 1.5 GB of a worker's memory."""
    wide = "p" + "," * 100_000 + "\n" + "+12125551234\n" * 1_500
    answer = client.post(SCRUB, content=wide.encode(), headers={**operator, **CSV})
    error = assert_error(answer, 400, "too_many_columns")
    assert error["details"] == {"columns": 100_001, "limit_columns": 1000}
    at_limit = "p" + ",x" * 999 + "\n+12125551234\n"
    assert client.post(SCRUB, content=at_limit.encode(), headers={**operator, **CSV}).is_success
    monkeypatch.setattr(scrub_api, "MAX_CELLS", 100)
    big = "p,a,b,c,d\n" + "+12125551234\n" * 21  # 21 rows of 5 columns
    answer = client.post(SCRUB, content=big.encode(), headers={**operator, **CSV})
    error = assert_error(answer, 413, "too_many_cells")
    assert error["details"] == {"rows": 21, "columns": 5, "limit_cells": 100}
    fits = "p,a,b,c,d\n" + "+12125551234\n" * 20
    assert client.post(SCRUB, content=fits.encode(), headers={**operator, **CSV}).is_success


def test_a_receipts_detail_ties_the_answer_to_its_question(
    client: TestClient, carrier: dict[str, str]
) -> None:
    """The same list scrubbed for calls and for texts gets opposite answers and the same
    `sha256`: the detail keeps what was asked and the hash of what was answered."""
    register(client, carrier, A, channels=["sms"])
    _, key = account(client)
    plain = {**key, "content-type": "text/plain"}
    line = f"{A}\n".encode()
    voice = client.post(SCRUB, params={"channel": "voice"}, content=line, headers=plain)
    only = {"channel": "sms", "only": "callable"}
    sms = client.post(SCRUB, params=only, content=line, headers=plain)
    receipts = []
    for answer in (voice, sms):
        path = f"/v1/scrubs/{answer.headers['x-scrub-receipt']}"
        short = client.get(path, headers=key).json()
        detail = client.get(path, params={"detail": "true"}, headers=key).json()
        assert {k: v for k, v in detail.items() if k not in ("asked", "answer_sha256")} == short
        assert detail["answer_sha256"] == hashlib.sha256(answer.content).hexdigest()
        receipts.append(detail)
    assert receipts[0]["sha256"] == receipts[1]["sha256"]
    assert receipts[0]["asked"] == {
        "format": "text/plain", "channels": ["voice"], "category": None, "region": "US",
        "column": None, "only": None,
    }  # fmt: skip
    second = receipts[1]["asked"]
    assert second["channels"] == ["sms"] and second["only"] == "callable"
    # A CSV names its column; a JSON scrub hashes its blocked and invalid lists.
    rows = f"name,phone\nAnn,{A}\n".encode()
    question = {"column": "phone", "category": "2"}
    table_scrub = client.post(SCRUB, params=question, content=rows, headers={**key, **CSV})
    path = f"/v1/scrubs/{table_scrub.headers['x-scrub-receipt']}"
    asked = client.get(path, params={"detail": "true"}, headers=key).json()["asked"]
    assert (asked["format"], asked["column"], asked["category"]) == ("text/csv", "phone", 2)
    answer = client.post(SCRUB, json={"numbers": [A, "junk"]}, headers=key).json()
    path = f"/v1/scrubs/{answer['receipt_id']}"
    detail = client.get(path, params={"detail": "true"}, headers=key).json()
    found = {"blocked": answer["blocked"], "invalid": answer["invalid"]}
    assert detail["answer_sha256"] == hashlib.sha256(orjson.dumps(found)).hexdigest()
    assert detail["asked"]["format"] == "application/json"


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_csv_separated_by_semicolons_or_tabs_is_told_so_not_scrubbed_invalid(
    client: TestClient, operator: dict[str, str], separator: str
) -> None:
    """Excel writes ';' where the decimal mark is a comma: read with commas, every row's one
    cell was no number, and every row came back invalid."""
    body = separator.join(["Name", "Telefon", "Ort"]) + "\n"
    body += separator.join(["Ann", A, "Berlin"]) + "\n"
    answer = client.post(SCRUB, content=body.encode(), headers={**operator, **CSV})
    error = assert_error(answer, 400, "invalid_csv")
    assert "not commas" in error["message"] and "comma delimited" in error["message"]
    # A one-column list with no separator in it is read as ever.
    fine = client.post(SCRUB, content=f"phone\n{A}\n".encode(), headers={**operator, **CSV})
    assert fine.status_code == 200


def test_an_operator_lists_its_own_receipts_oldest_first_and_pages_through_them(
    client: TestClient,
) -> None:
    """What it washed over the kept months, to show a regulator; no one else's."""
    _, key = account(client)
    _, other = account(client)
    receipts = client.app.state.services.receipts  # type: ignore[attr-defined]
    client.post(SCRUB, json={"numbers": [A]}, headers=other)
    # Listed once settled (its write's window over), so a cursor never passes one to come.
    assert client.get("/v1/scrubs", headers=other).json()["receipts"] == []
    receipts.settle_seconds = 0
    made = [
        client.post(SCRUB, json={"numbers": [A]}, headers=key).json()["receipt_id"],
        scrub_plain(client, key, [A, FREE]).headers["x-scrub-receipt"],
        client.post(SCRUB, json={"numbers": [FREE]}, headers=key).json()["receipt_id"],
    ]
    listed = client.get("/v1/scrubs", headers=key).json()
    assert [r["receipt_id"] for r in listed["receipts"]] == made and listed["more"] is False
    for receipt in listed["receipts"]:
        assert receipt == client.get(f"/v1/scrubs/{receipt['receipt_id']}", headers=key).json()
    first = client.get("/v1/scrubs", params={"limit": "2"}, headers=key).json()
    assert [r["receipt_id"] for r in first["receipts"]] == made[:2] and first["more"] is True
    rest = client.get("/v1/scrubs", params={"since": first["next"]}, headers=key).json()
    assert [r["receipt_id"] for r in rest["receipts"]] == made[2:] and rest["more"] is False
    # Polled again with the last cursor: nothing new, the same cursor back.
    again = client.get("/v1/scrubs", params={"since": rest["next"]}, headers=key).json()
    assert again == {"receipts": [], "next": rest["next"], "more": False}
    later = client.post(SCRUB, json={"numbers": [A]}, headers=key).json()["receipt_id"]
    polled = client.get("/v1/scrubs", params={"since": rest["next"]}, headers=key).json()
    assert [r["receipt_id"] for r in polled["receipts"]] == [later]


@pytest.mark.parametrize("since", ["yesterday", "1", "000000000000001:x y", "0" * 15])
def test_a_receipt_list_cursor_it_did_not_give_is_a_400(
    client: TestClient, operator: dict[str, str], since: str
) -> None:
    answer = client.get("/v1/scrubs", params={"since": since}, headers=operator)
    assert_error(answer, 400, "invalid_cursor")
