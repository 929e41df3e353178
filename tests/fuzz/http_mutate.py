"""Deterministic mutation of real HTTP requests (no I/O, no clock): the fuzz of every public endpoint.

A :class:`Seed` is one real request of an endpoint (a signed AuthnRequest, a token request, the
simulator's client form, a kiosk heartbeat, ...). :func:`mutants` turns it into ``count`` requests,
the seed itself first, driven by ``random.Random(seed_number)`` so that a failure is reproduced by
re-running the test. What is mutated depends on what the seed carries:

* a url-encoded form or query string: broken percent-escapes (``%``, ``%zz``, ``%ff``, overlong and
  surrogate UTF-8), raw non-UTF-8 bytes, separators, duplicated / dropped / renamed / emptied
  parameters, over-long values and too many fields;
* any body: bit flips, insertion, deletion, truncation, duplication of a stretch;
* the Content-Type: multipart (broken, well-formed, with a file part), other media types, none at
  all, foreign or unknown charsets (with the body re-encoded to match where possible);
* a path with a flow reference: the reference damaged, lengthened, emptied.

Over-long request lines and broken HTTP framing are not made here: they never reach a handler
(aiohttp's own parser answers them) and are another test's subject.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

BAD_ESCAPES: tuple[bytes, ...] = (
    b"%",
    b"%z",
    b"%zz",
    b"%4",
    b"%4g",
    b"%ff",
    b"%FE%FF",
    b"%c3%28",
    b"%ed%a0%80",
    b"%c0%af",
    b"%e2%82",
    b"%00",
    b"%0a",
    b"%25",
    b"%%",
    b"%u00e4",
)
RAW_BYTES: tuple[bytes, ...] = (
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\x80",
    b"\xe4",
    b"\x00",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    "ä".encode(),
    "\u202e".encode(),
    b"\r\n",
    b"\t",
)
SEPARATORS: tuple[bytes, ...] = (b"&", b"=", b"+", b";", b"&&", b"==", b"%", b"?", b"#", b" ")
OTHER_TYPES: tuple[str | None, ...] = (
    None,
    "text/plain",
    "application/json",
    "application/xml",
    "text/xml; charset=utf-8",
    "application/octet-stream",
    "application/x-www-form-urlencoded; charset=latin-1",
    "application/x-www-form-urlencoded; charset=unknown-8bit",
    "application/x-www-form-urlencoded; charset=utf-16",
    'application/x-www-form-urlencoded; charset="',
    "application/x-www-form-urlencoded;;;",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/mixed; boundary=x",
    "application/x-www-form-urlencodedx",
    "*/*",
    "",
)


#: Request targets are cut to this length: aiohttp refuses request lines over 8190 bytes itself.
MAX_QUERY = 6000


@dataclass(frozen=True)
class Seed:
    """One real request of an endpoint. ``fields`` (a form) or ``body`` (raw bytes), not both."""

    endpoint: str  #: "METHOD /route/{pattern}" as the router names it
    method: str
    path: str
    query: str = ""
    fields: tuple[tuple[str, str], ...] | None = None
    body: bytes | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    #: which part to mutate: "body", "query" or "path" (a GET with a flow reference in the path)
    target: str = "body"
    #: a JSON body: mutate its values as well as its bytes
    json_body: bool = False


@dataclass
class Request:
    """One concrete request to send; ``note`` says how it was made (for the failure report)."""

    method: str
    target: str  #: path and raw query, sent verbatim
    body: bytes | None
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)
    note: str = "seed"


def _encode(fields: Sequence[tuple[str, str]]) -> bytes:
    return urlencode(list(fields)).encode("ascii")


def _insert(rng: random.Random, data: bytes, piece: bytes) -> bytes:
    i = rng.randint(0, len(data))
    return data[:i] + piece + data[i:]


def _bytes_op(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """A byte-level change of any text (form, query, JSON, XML)."""
    op = rng.randrange(9)
    if op == 0:
        return _insert(rng, data, rng.choice(BAD_ESCAPES)), "bad escape"
    if op == 1 and b"%" in data:  # damage an existing escape in place
        starts = [i for i in range(len(data)) if data[i : i + 1] == b"%"]
        i = rng.choice(starts)
        return data[:i] + rng.choice(BAD_ESCAPES) + data[i + 3 :], "escape replaced"
    if op == 2:
        return _insert(rng, data, rng.choice(RAW_BYTES)), "raw bytes"
    if op == 3:
        return _insert(rng, data, rng.choice(SEPARATORS)), "separator"
    if op == 4 and data:
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        return bytes(buf), "bit flips"
    if op == 5 and data:
        i = rng.randrange(len(data))
        return data[:i] + data[i + rng.randint(1, 32) :], "deletion"
    if op == 6:
        return data[: rng.randint(0, len(data))], "truncation"
    if op == 7 and data:
        i = rng.randrange(len(data))
        j = min(len(data), i + rng.randint(1, 64))
        return _insert(rng, data, data[i:j]), "duplicated stretch"
    return _insert(rng, data, bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))), "random bytes"


def _fields_op(rng: random.Random, fields: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], str]:
    """A parameter-level change of a form or query."""
    out = list(fields)
    op = rng.randrange(7)
    if op == 0 and out:
        k, v = rng.choice(out)
        out.insert(rng.randint(0, len(out)), (k, rng.choice([v, v[::-1], "", "x" * rng.randint(1, 300)])))
        return out, "duplicated parameter"
    if op == 1 and out:
        del out[rng.randrange(len(out))]
        return out, "dropped parameter"
    if op == 2 and out:
        i = rng.randrange(len(out))
        out[i] = (out[i][0], "")
        return out, "emptied parameter"
    if op == 3 and out:
        i = rng.randrange(len(out))
        out[i] = (rng.choice(["", out[i][0].upper(), out[i][0] + "[]", "\u00e4" + out[i][0], " "]), out[i][1])
        return out, "renamed parameter"
    if op == 4 and out:
        i = rng.randrange(len(out))
        out[i] = (out[i][0], rng.choice(["A" * 20_000, "\u00e4\u20ac\U0001f600", "\x00", "<x/>", "../../etc"]))
        return out, "odd value"
    if op == 5:
        out.extend(("f", "v") for _ in range(rng.choice((50, 150, 1200))))
        return out, "many fields"
    return out, "unchanged fields"


def _multipart(rng: random.Random, fields: Sequence[tuple[str, str]]) -> tuple[bytes, str, str]:
    kind = rng.randrange(4)
    if kind == 0:
        return b"--x\r\n", "multipart/form-data; boundary=x", "multipart cut off"
    if kind == 1:
        return b"", "multipart/form-data; boundary=x", "multipart empty"
    parts = []
    for k, v in fields:
        parts.append(f'--b0undary\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    if kind == 3:
        parts.append(
            b'--b0undary\r\nContent-Disposition: form-data; name="SAMLRequest"; filename="a.xml"\r\n'
            b"Content-Type: text/xml\r\n\r\n<x/>\r\n"
        )
    body = b"".join(parts) + b"--b0undary--\r\n"
    if kind == 2 and rng.random() < 0.5:
        body = body.replace(b"form-data; name=", b"form-data; nam=", 1)  # a part without a name
    return body, "multipart/form-data; boundary=b0undary", "multipart well-formed" if kind == 2 else "multipart file"


def _json_op(rng: random.Random, body: bytes) -> tuple[bytes, str]:
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return _bytes_op(rng, body)
    odd: list[Any] = [None, True, -1, 2**64, 1.5, "", "x" * 5000, [], {}, [1, [2, [3]]], {"a": {"b": {}}}, "\u0000"]
    if isinstance(doc, dict) and doc:
        key = rng.choice(sorted(doc))
        op = rng.randrange(3)
        if op == 0:
            doc[key] = rng.choice(odd)
            note = f"{key} replaced"
        elif op == 1:
            del doc[key]
            note = f"{key} dropped"
        else:
            doc = rng.choice([[doc], "text", 7, None])
            note = "another top-level type"
    else:
        doc = rng.choice(odd)
        note = "document replaced"
    return json.dumps(doc).encode(), note


def _content_type_op(rng: random.Random, seed: Seed, body: bytes) -> tuple[bytes, str | None, str]:
    if seed.fields is not None and rng.random() < 0.5:
        data, ctype, note = _multipart(rng, seed.fields)
        return data, ctype, note
    ctype = rng.choice(OTHER_TYPES)
    if ctype is not None and "latin-1" in ctype:
        body = body.replace(b"%C3%A4", b"\xe4") + b"&x=\xe4"
    elif ctype is not None and "utf-16" in ctype:
        body = body.decode("latin-1").encode("utf-16")
    return body, ctype, f"content type {ctype!r}"


def _path_op(rng: random.Random, path: str) -> tuple[str, str]:
    head, _, ref = path.rpartition("/")
    op = rng.randrange(6)
    if op == 0:
        return f"{head}/{ref[: rng.randint(0, len(ref))]}", "reference cut"
    if op == 1:
        return f"{head}/{ref}{'A' * rng.choice((1, 100, 2000))}", "reference lengthened"
    if op == 2:
        return f"{head}/{rng.choice(['%00', '%ff', '%2e%2e', '..', '%2F', 'ä', '%', '%zz'])}{ref}", "odd reference"
    if op == 3:
        return f"{head}/", "no reference"
    if op == 4:
        i = rng.randrange(len(ref)) if ref else 0
        return f"{head}/{ref[:i]}{rng.choice('-_~.!$()*+,;=:@')}{ref[i + 1 :]}", "reference character"
    return path + "/extra", "extra segment"


def _query_pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


def _target(path: str, query: str) -> str:
    """A request target as a client can send it: octets outside printable ASCII percent-encoded (raw
    ones would not survive the client), cut to :data:`MAX_QUERY` (aiohttp's parser refuses longer lines
    before any handler runs)."""
    target = path + ("?" + query if query else "")
    return "".join(c if 0x20 < ord(c) < 0x7F else f"%{ord(c) & 0xFF:02X}" for c in target)[:MAX_QUERY]


def mutate(rng: random.Random, seed: Seed) -> Request:
    """One mutant of ``seed`` (one to three changes)."""
    notes: list[str] = []
    path, query, ctype = seed.path, seed.query, seed.content_type
    headers = dict(seed.headers)
    body = seed.body
    method = seed.method
    if seed.target == "path":
        path, note = _path_op(rng, path)
        notes.append(note)
        if rng.random() < 0.3:
            query_bytes, note = _bytes_op(rng, query.encode())
            query = query_bytes.decode("ascii", "replace")  # request-target octets stay ASCII here
            notes.append(note)
        if method == "GET" and rng.random() < 0.1:
            method, notes = "HEAD", notes + ["HEAD"]
        return Request(method, _target(path, query), None, None, headers, ", ".join(notes))
    if seed.target == "query":
        for _ in range(rng.choice((1, 1, 2, 3))):
            if rng.random() < 0.4:
                pairs, note = _fields_op(rng, _query_pairs(query))
                query = urlencode(pairs)
            else:
                data, note = _bytes_op(rng, query.encode())
                query = data.decode("ascii", "replace").replace("\ufffd", "%ff")
            notes.append(note)
        if method == "GET" and rng.random() < 0.1:
            method, notes = "HEAD", notes + ["HEAD"]
        return Request(method, _target(path, query), None, None, headers, ", ".join(notes))
    # a body
    if seed.fields is not None:
        fields = list(seed.fields)
        if rng.random() < 0.35:
            fields, note = _fields_op(rng, fields)
            notes.append(note)
        body = _encode(fields)
    assert body is not None
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        if seed.json_body and rng.random() < 0.5:
            body, note = _json_op(rng, body)
        else:
            body, note = _bytes_op(rng, body)
        notes.append(note)
    if rng.random() < 0.3:
        body, ctype, note = _content_type_op(rng, seed, body)
        notes.append(note)
    if not notes:
        body, note = _bytes_op(rng, body)
        notes.append(note)
    return Request(method, path + ("?" + query if query else ""), body, ctype, headers, ", ".join(notes))


def as_request(seed: Seed) -> Request:
    """The seed itself, unchanged."""
    body = _encode(seed.fields) if seed.fields is not None else seed.body
    target = seed.path + ("?" + seed.query if seed.query else "")
    return Request(seed.method, target, body, seed.content_type, dict(seed.headers))


def mutants(seed: Seed, count: int, seed_number: int) -> Iterator[Request]:
    """The seed, then ``count - 1`` mutants of it, reproducibly."""
    rng = random.Random(seed_number)
    yield as_request(seed)
    for _ in range(count - 1):
        yield mutate(rng, seed)
