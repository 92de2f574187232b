"""Hostile input refused before any route sees it (docs/security.md, "Limits on input").

FastAPI parses a JSON body with Python's ``json`` module and hands the result to pydantic.
Between them, some bodies that are JSON by the letter broke the API instead of getting a 4xx:

- nesting: Python's parser gives up near 1 000 levels (RecursionError, a bare 400), and
  pydantic cannot serialize past 255 levels nor parse JSON past 200: a task nested 300 deep
  passed validation and answered 500, one nested 199 deep was stored but unreadable by the
  Python client. Bodies nest at most ``MAX_JSON_DEPTH`` levels.
- a string escaping a lone UTF-16 surrogate (``"\\ud800"``) is JSON but not Unicode: it was
  stored, and every later listing that held it answered 500.
- a NUL character (``%00``) in a path: no id or name holds one, and PostgreSQL cannot even
  compare it (500 there); 404 on every store alike. (NUL in a JSON string or a query value
  is left to the stores: the OpenAPI allows it, so refusing it would reject schema-valid
  requests.)
- a key given twice in one object: parsers disagree on which one wins (Python keeps the last),
  so a proxy and the API could read two different requests.
- an integer of more than 4 300 digits: Python refuses to convert it (a bare 400).
- a body that is not UTF-8 (RFC 8259 requires it): Python guessed UTF-16 and accepted it.

``InputGuard`` checks every request for these (bodies sent as JSON, after ``BodyLimit`` has
bounded their size) and answers in the API's error shape; other malformed JSON goes on to
FastAPI, whose 422 says where it broke.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message as MimeMessage
from itertools import accumulate
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from genqueue.api.errors import error_response, replay
from genqueue.api.schemas import FieldError

MAX_JSON_DEPTH = 64  # arrays and objects inside one another; far below every parser's limit
MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300  # Python's own limit on int("...")
IN_A_THREAD_BYTES = 64 * 1024  # bigger bodies are checked off the event loop

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# '[' and '{' -> +1, ']' and '}' -> -1 (255 read as a signed byte)
_STEPS = bytes(1 if b in b"[{" else 255 if b in b"]}" else 0 for b in range(256))
# Escapes that may decode to a surrogate (a cheap test before looking closer).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


@dataclass(frozen=True)
class Problem:
    status: int
    field: str
    message: str


class _Refused(ValueError):
    """Raised from the parser's hooks to stop at the first problem."""


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body`` (brackets inside strings ignored),
    measured in C-speed passes over the bytes, without parsing it."""
    brackets = _STRING.sub(b"", body).translate(_STEPS, _NOT_BRACKETS)
    return max(accumulate(memoryview(brackets).cast("b")), default=0)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"the key {key!r} appears twice in one object: give each once")
            seen.add(key)
    return value


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"a number of {len(digits)} digits: at most {MAX_INT_DIGITS} digits")
    return int(digits)


def _strings(value: Any) -> Iterator[str]:
    """Every key and string in a parsed JSON value (nested at most ``MAX_JSON_DEPTH``)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _surrogate_problem(text: str) -> str | None:
    """Why ``text`` (a decoded string) is not Unicode text, or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = f"\\u{ord(text[exc.start]):04x}"
        return f"a string holds a lone UTF-16 surrogate ({bad}), which is not Unicode text"
    return None


def json_problem(body: bytes) -> Problem | None:
    """What makes ``body`` hostile (see the module docstring), or None: fine, or malformed
    in a way FastAPI reports itself."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"byte 0x{body[exc.start]:02x} at position {exc.start}"
        return Problem(400, "body", f"not UTF-8 text ({where}): JSON must be sent in UTF-8")
    depth = json_depth(body)
    if depth > MAX_JSON_DEPTH:
        message = (
            f"JSON nested {depth} levels deep: at most {MAX_JSON_DEPTH} arrays and objects"
            " inside one another"
        )
        return Problem(422, "body", message)
    try:
        value = json.loads(
            text.removeprefix("\ufeff"), object_pairs_hook=_unique_keys, parse_int=_bounded_int
        )
    except _Refused as exc:
        return Problem(422, "body", str(exc))
    except (ValueError, RecursionError):
        return None  # malformed: FastAPI's 422 names the place
    if _SURROGATE_ESCAPE.search(text):
        for string in _strings(value):
            found = _surrogate_problem(string)
            if found is not None:
                return Problem(422, "body", found)
    return None


def url_problem(scope: Scope) -> Problem | None:
    """A NUL in the path: no id or name holds one (404, as for any unknown id)."""
    if "\x00" in scope["path"]:
        return Problem(404, "path", "no such path: no id or name holds a NUL character")
    return None


def is_json(scope: Scope) -> bool:
    """Whether FastAPI parses this request's body as JSON (by its Content-Type)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            message = MimeMessage()
            message["content-type"] = value.decode("latin-1")
            subtype = message.get_content_subtype()
            main = message.get_content_maintype()
            return main == "application" and (subtype == "json" or subtype.endswith("+json"))
    return False


class InputGuard:
    """Refuse hostile input (``url_problem``, ``json_problem``) before the application reads
    it. Sits inside ``BodyLimit``, so a body it holds in memory is already bounded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = url_problem(scope)
        if problem is None and is_json(scope):
            body, last = await _read_body(receive)
            if last["type"] != "http.request":  # the client went away
                await self.app(scope, replay([last], receive), send)
                return
            if len(body) > IN_A_THREAD_BYTES:
                problem = await asyncio.to_thread(json_problem, body)
            else:
                problem = json_problem(body)
            whole: Message = {"type": "http.request", "body": body, "more_body": False}
            receive = replay([whole], receive)
        if problem is None:
            await self.app(scope, receive, send)
            return
        await _refusal(problem)(scope, receive, send)


def _refusal(problem: Problem) -> JSONResponse:
    if problem.status == 404:  # a path: as for any unknown id
        return error_response(404, "not_found", problem.message)
    fields = [FieldError(field=problem.field, message=problem.message)]
    message = f"{problem.field}: {problem.message}"
    return error_response(problem.status, "invalid_request", message, fields)


async def _read_body(receive: Receive) -> tuple[bytes, Message]:
    """The whole body, and the last message received (not ``http.request`` if the client
    went away first)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), message
