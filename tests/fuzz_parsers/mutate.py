"""Deterministic mutators and the one runner of the parser fuzz tests (no I/O, no clock, seeded).

Three kinds of input, three mutators, all driven by a ``random.Random(seed)`` so that a failure is
reproduced by re-running the test:

* :func:`binary_mutants` for DER / BER-TLV / APDU bytes: bit flips, interesting bytes, insertion,
  deletion, truncation, duplication, splicing of two samples, and TLV length and tag rewrites at the
  places where the samples really carry a length (walked with the project's own
  :func:`tr03110.tlv.read_one`).
* :func:`xml_mutants` for XML: edits of the parsed tree (delete, duplicate, move or rename an element,
  foreign text and attribute values, elements where text belongs) so that the mutants get past the XML
  parser into the message parsers; a share is also mutated as raw bytes.
* :func:`json_mutants` for JSON documents: values replaced by values of other types and sizes, keys
  dropped, nesting, and raw byte mutations of the serialised text.

:func:`fuzz` feeds every input to a parser and sorts the outcome: accepted, refused with a declared
error type, or anything else (the defects these tests exist to find).
"""

from __future__ import annotations

import copy
import functools
import json
import random
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lxml import etree

from tr03110.tlv import TlvError, read_one

T = TypeVar("T")

# --- binary ------------------------------------------------------------------------------------------------

_INTERESTING_BYTES = (
    0x00,
    0x01,
    0x1F,
    0x30,
    0x31,
    0x7F,
    0x80,
    0x81,
    0x82,
    0x83,
    0x84,
    0x85,
    0x86,
    0x89,
    0xA0,
    0xBF,
    0xFE,
    0xFF,
)


@functools.lru_cache(maxsize=256)
def tlv_fields(data: bytes) -> tuple[tuple[int, int, int, int], ...]:
    """``(tag_offset, length_offset, value_offset, end)`` of every data object found in ``data``, nested
    ones included (a value that parses as TLV all the way through is walked as well). Cached: the
    samples are walked again and again."""
    found: list[tuple[int, int, int, int]] = []

    def walk(start: int, stop: int, depth: int) -> None:
        pos = start
        local: list[tuple[int, int, int, int]] = []
        while pos < stop:
            try:
                item, end = read_one(data[:stop], pos)
            except TlvError:
                return
            value_offset = end - len(item.value)
            tag_length = max(1, (item.tag.bit_length() + 7) // 8)
            local.append((pos, pos + tag_length, value_offset, end))
            pos = end
        found.extend(local)
        if depth < 12:
            for _, _, value_offset, end in local:
                if end > value_offset:
                    walk(value_offset, end, depth + 1)

    walk(0, len(data), 0)
    return tuple(found)


def _length_bytes(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv_length_tweak(rng: random.Random, data: bytes) -> bytes:
    fields = tlv_fields(data)
    if not fields:
        return _byte_tweak(rng, data)
    _, length_offset, value_offset, end = rng.choice(fields)
    length = end - value_offset
    new = rng.choice(
        [
            _length_bytes(length + 1),
            _length_bytes(max(0, length - 1)),
            _length_bytes(0),
            b"\x80",
            b"\x81" + bytes([length & 0xFF]),
            b"\x82" + length.to_bytes(2, "big"),  # non-minimal (not DER)
            b"\x84\xff\xff\xff\xff",
            b"\x85\x01\x00\x00\x00\x00",
            b"\x88" + b"\xff" * 8,
            b"\x81",
            b"\xff",
            _length_bytes(length + rng.randint(2, 300)),
            _length_bytes(rng.randint(0, 0xFFFF)),
        ]
    )
    return data[:length_offset] + new + data[value_offset:]


def _tlv_tag_tweak(rng: random.Random, data: bytes) -> bytes:
    fields = tlv_fields(data)
    if not fields:
        return _byte_tweak(rng, data)
    tag_offset, length_offset, value_offset, end = rng.choice(fields)
    op = rng.randrange(4)
    if op == 0:  # another tag byte (class, constructed bit, multi-byte marker)
        return (
            data[:tag_offset] + bytes([rng.choice(_INTERESTING_BYTES + (rng.randrange(256),))]) + data[length_offset:]
        )
    if op == 1:  # an overlong / unterminated multi-byte tag
        return (
            data[:tag_offset]
            + rng.choice([b"\x7f\xff\xff\xff\x01", b"\x5f", b"\x9f\x80\x80", b"\x1f\x00"])
            + data[length_offset:]
        )
    if op == 2:  # drop the whole data object
        return data[:tag_offset] + data[end:]
    return data[:end] + data[tag_offset:end] + data[end:]  # repeat it


def _byte_tweak(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    op = rng.randrange(8)
    if op == 0 and buf:  # flip one to four bits
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif op == 1 and buf:
        buf[rng.randrange(len(buf))] = rng.choice(_INTERESTING_BYTES)
    elif op == 2:
        i = rng.randint(0, len(buf))
        buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif op == 3 and buf:
        i = rng.randrange(len(buf))
        del buf[i : i + rng.randint(1, 16)]
    elif op == 4:
        del buf[rng.randint(0, len(buf)) :]
    elif op == 5 and buf:
        i = rng.randrange(len(buf))
        j = min(len(buf), i + rng.randint(1, 64))
        k = rng.randint(0, len(buf))
        buf[k:k] = buf[i:j]
    elif op == 6 and buf:  # an arithmetic step on one byte (lengths, counts, version numbers)
        i = rng.randrange(len(buf))
        buf[i] = (buf[i] + rng.choice((-2, -1, 1, 2, 0x40, 0x80))) & 0xFF
    else:
        buf.extend(bytes([rng.choice(_INTERESTING_BYTES)]) * rng.randint(1, 4))
    return bytes(buf)


def _splice(rng: random.Random, a: bytes, b: bytes) -> bytes:
    return a[: rng.randint(0, len(a))] + b[rng.randint(0, len(b)) :]


def binary_mutants(samples: Sequence[bytes], count: int, seed: int) -> Iterator[bytes]:
    """The samples themselves, then mutants up to ``count`` inputs in all (1-3 mutations each)."""
    rng = random.Random(seed)
    yield from samples
    for _ in range(count - len(samples)):
        data = rng.choice(samples)
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            op = rng.randrange(10)
            if op < 3:
                data = _tlv_length_tweak(rng, data)
            elif op < 5:
                data = _tlv_tag_tweak(rng, data)
            elif op == 5:
                data = _splice(rng, data, rng.choice(samples))
            else:
                data = _byte_tweak(rng, data)
        yield data


# --- XML -------------------------------------------------------------------------------------------------

#: Text and attribute values that parsers of dates, numbers, booleans, URIs, IDs and hex stumble over.
INTERESTING_TEXT = (
    "",
    " ",
    "\t\n",
    "0",
    "-1",
    "+1",
    "00",
    "1e9",
    "NaN",
    "99999999999999999999999",
    "65536",
    "\u00b2",
    "\u00b9\u00b2",
    "\u0663",
    "\U0001d7d9",
    "\u2167",
    "true",
    "false",
    "TRUE",
    "yes",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0000-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T00:00:00+99:99",
    "2026-01-01",
    "P99999999999999999Y",
    "PT99999999999999999S",
    "-P1D",
    "P",
    "PT1.5S",
    "P1Y2M3DT4H5M6.7S",
    "19650812",
    "1965    ",
    "0000",
    "196508",
    "  ",
    "2026-13",
    "http://",
    "https://[::1",
    "urn:",
    "https://idp.example.de/x",
    "\u202e\u200b",
    "\u00e9" * 40,
    "a" * 300,
    "_" + "0" * 40,
    "0a" * 16,
    "0A" * 33,
    "gg",
    "abc",
    "=",
    "%",
    "&",
    "<x>",
    "]]>",
    "id",
    "ID",
    "9" * 5000,  # more digits than int() converts (ValueError since Python 3.11)
    "[" * 3000,
    '{"a":' * 3000,  # JSON inside text, nested deeper than json's recursion limit
)


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _xml_tree_edit(rng: random.Random, root: etree._Element) -> None:
    elements = _elements(root)
    el = rng.choice(elements)
    parent = el.getparent()
    other = rng.choice(elements)
    op = rng.randrange(16)
    if op == 0 and parent is not None:
        parent.remove(el)
    elif op == 1 and parent is not None:
        el.addnext(copy.deepcopy(el))
    elif op == 2 and parent is not None:  # move among its siblings
        parent.remove(el)
        parent.insert(rng.randint(0, len(parent)), el)
    elif op in (3, 4):
        el.text = rng.choice(INTERESTING_TEXT)
    elif op == 5 and other is not el and el not in other.iterancestors():
        el.append(copy.deepcopy(other))  # an element where text (or something else) belongs
    elif op == 6:
        el.tail = rng.choice(("x", " ", "\n", "text"))
    elif op == 7:  # rename: another local name, or another namespace
        ns = etree.QName(el).namespace
        other_q = etree.QName(other)
        el.tag = rng.choice(
            [
                f"{{{ns}}}{other_q.localname}" if ns else other_q.localname,
                f"{{{other_q.namespace}}}{etree.QName(el).localname}"
                if other_q.namespace
                else etree.QName(el).localname,
                etree.QName(el).localname,
                f"{{urn:x}}{etree.QName(el).localname}",
            ]
        )
    elif op in (8, 9) and any(e.attrib for e in elements):
        el = rng.choice([e for e in elements if e.attrib])  # attributes carry dates, indexes, flags
        name = rng.choice(list(el.attrib))
        if rng.random() < 0.3:
            del el.attrib[name]
        else:
            el.set(name, rng.choice(INTERESTING_TEXT + tuple(other.attrib.values())))
    elif op == 10 and other.attrib:
        name = rng.choice(list(other.attrib))
        el.set(name, rng.choice((other.attrib[name],) + INTERESTING_TEXT))
    elif op == 11 and parent is not None:  # children dropped (now and then with another element's text)
        for child in list(el):
            el.remove(child)
        if rng.random() < 0.5:
            el.text = other.text
    elif op == 12:
        el.text = other.text
    else:
        el.text = rng.choice(INTERESTING_TEXT)


def xml_mutants(samples: Sequence[bytes], count: int, seed: int, *, raw_share: float = 0.15) -> Iterator[bytes]:
    """The samples, then mutants up to ``count``: tree edits (1-3 each), and ``raw_share`` of byte-level
    mutants of the serialised document (these mostly test the XML parser's own refusals)."""
    rng = random.Random(seed)
    yield from samples
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    trees = [etree.fromstring(s, parser) for s in samples]
    for _ in range(count - len(samples)):
        if rng.random() < raw_share:
            data = rng.choice(samples)
            for _ in range(rng.choice((1, 1, 2))):
                data = _splice(rng, data, rng.choice(samples)) if rng.random() < 0.15 else _byte_tweak(rng, data)
            yield data
            continue
        root = copy.deepcopy(rng.choice(trees))
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            _xml_tree_edit(rng, root)
        yield etree.tostring(root)


# --- JSON ------------------------------------------------------------------------------------------------

_JSON_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**31,
    2**53,
    2**64,
    10**400,
    "",
    "x",
    "\u0000",
    "\u001f",
    "\u00e9" * 300,
    "a" * 5000,
    "3B8A80",
    "3b8a80",
    "ready",
    [],
    {},
    [None],
    {"x": 1},
    [[[[[]]]]],
    float("1e308"),
)


def _json_paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _json_paths(value, path + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _json_paths(value, path + (i,))


def _json_edit(rng: random.Random, doc: Any) -> Any:
    paths = list(_json_paths(doc))
    path = rng.choice(paths)
    if not path:
        return copy.deepcopy(rng.choice(_JSON_VALUES + ([doc],)))  # never a shared value: later edits mutate it
    holder = doc
    for key in path[:-1]:
        holder = holder[key]
    key = path[-1]
    op = rng.randrange(5)
    if op == 0 and isinstance(holder, dict):
        del holder[key]
    elif op == 1 and isinstance(holder, list):
        holder.append(copy.deepcopy(holder[key] if rng.random() < 0.7 else rng.choice(_JSON_VALUES)))
    elif op == 2:
        holder[key] = [holder[key]] if rng.random() < 0.5 else {"v": holder[key]}
    elif op == 3 and isinstance(holder, dict):
        holder[rng.choice(("extra", "status", "card", "readers", "seq", key + "_"))] = copy.deepcopy(
            rng.choice(_JSON_VALUES)
        )
    else:
        holder[key] = copy.deepcopy(rng.choice(_JSON_VALUES))
    return doc


def json_mutants(samples: Sequence[Any], count: int, seed: int, *, raw_share: float = 0.2) -> Iterator[bytes]:
    """Serialised samples, then mutants: structural edits (1-3 each), and ``raw_share`` of byte-level
    mutants of the text, including deeply nested arrays."""
    rng = random.Random(seed)
    encoded = [json.dumps(s).encode() for s in samples]
    yield from encoded
    for _ in range(count - len(samples)):
        r = rng.random()
        if r < 0.02:
            depth = rng.choice((100, 1000, 30000))
            yield b"[" * depth + b"]" * depth if rng.random() < 0.5 else b'{"a":' * depth + b"1" + b"}" * depth
        elif r < raw_share:
            yield _byte_tweak(rng, rng.choice(encoded))
        else:
            doc = copy.deepcopy(rng.choice(samples))
            for _ in range(rng.choice((1, 1, 2, 3))):
                doc = _json_edit(rng, doc)
            yield json.dumps(doc).encode()


# --- runner ----------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What came out of one parser over one input stream."""

    name: str
    inputs: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    undeclared: list[tuple[Any, BaseException, str]] = field(default_factory=list)

    def report(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in self.refused.most_common())
        return f"{self.name}: {self.inputs} inputs, {self.accepted} accepted, refused: {kinds}"

    def check(self, *, min_inputs: int, refusals: bool = True) -> None:
        """No undeclared exception; enough inputs; and both outcomes seen (the mutants reach the parser).
        ``refusals=False`` for an entry point that declares no exception (it answers every input)."""
        if self.undeclared:
            by_type: dict[str, tuple[Any, str]] = {}
            for data, exc, tb in sorted(self.undeclared, key=lambda u: len(repr(u[0]))):
                by_type.setdefault(type(exc).__qualname__, (data, tb))
            lines = [f"{len(self.undeclared)} undeclared exceptions from {self.name}:"]
            for name, (data, tb) in by_type.items():
                lines.append(f"--- {name}, shortest input: {data!r}\n{tb}")
            raise AssertionError("\n".join(lines))
        assert self.inputs >= min_inputs, self.report()
        assert self.accepted > 0 and (sum(self.refused.values()) > 0 or not refusals), self.report()


def fuzz(
    name: str,
    parse: Callable[[T], object],
    inputs: Iterator[T] | Sequence[T],
    declared: tuple[type[BaseException], ...],
) -> Tally:
    """Run ``parse`` over every input; sort each outcome. Exceptions outside ``declared`` are kept with
    their input and traceback for the failure message (``check``)."""
    tally = Tally(name)
    for data in inputs:
        tally.inputs += 1
        try:
            parse(data)
        except declared as exc:
            tally.refused[type(exc).__name__] += 1
        except Exception as exc:  # the point of the test: anything undeclared is collected
            tally.undeclared.append((data, exc, "".join(traceback.format_exception(exc, limit=-4))))
        else:
            tally.accepted += 1
    print(tally.report())
    return tally


def fuzz_binary(
    parse: Callable[[bytes], object],
    samples: Sequence[bytes],
    count: int,
    seed: int,
    declared: tuple[type[BaseException], ...],
) -> None:
    """The common case of a parser of octets: :func:`fuzz` over ``count`` :func:`binary_mutants` of
    ``samples``, then :meth:`Tally.check` that all ``count`` reached it. The tally is named after the
    parser (its dotted path, without the ``eid_gateway.`` prefix)."""
    name = f"{parse.__module__}.{parse.__qualname__}".removeprefix("eid_gateway.")
    fuzz(name, parse, binary_mutants(samples, count, seed=seed), declared).check(min_inputs=count)
