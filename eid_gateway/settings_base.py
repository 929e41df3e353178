"""The one way a table of the gateway's TOML config is read and validated: pydantic v2 models.

Every settings module (``config.py``'s own tables, ``frontends/oidc/settings.py``,
``kiosks/settings.py``, ``eidserver/settings.py``, ...) describes its table as a :class:`Section`
model and validates it with :func:`validate` or a :class:`Reader`, so that

- every problem of a file is found in one run, each named by its key path in TOML terms
  (``services[2].saml.acs_urls[0]: must be an absolute https URL``): an operator fixes the file in one pass;
- unknown keys are errors (``extra="forbid"``): a typo in a security setting must not fall back to a default;
- TOML's types are taken as they are (``strict``): ``port = "8080"`` or ``workers = true`` is an error,
  not a silent conversion;
- there is one exception type, :class:`ConfigError`, carrying the list of problems.

Checks of one value are field types (:class:`Range`, :data:`Text`, :data:`FilePath`,
:data:`MaterialFile`, or a condition and its message with :func:`refuse_unless`); checks across the
fields of one table are an ``@model_validator(mode="after")`` that collects its problems in
:class:`Problems`. pydantic runs such a validator only when the table's fields are valid, so a table
that other checks depend on (``[[services]]``'s ``saml`` and ``oidc``) is read as a raw table and
validated by its own model: the :class:`Reader` collects problems across tables.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn, Self, TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from certs.devpki import DEV_MARKER, is_dev_file
from certs.loading import CertLoadError, load_certificate_file, load_key_pair_file, load_secret_file
from saml.errors import SamlError
from saml.keys import KeyPair, check_key_strength

#: A key path below the table being validated: names of keys and indexes of array entries.
Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

_CUSTOM: Final = "config"


class ConfigError(Exception):
    """The config is unusable; ``errors`` lists every problem found, one line each, key path first."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class ReadContext:
    """What a table's checks need beyond the table itself (handed to pydantic as validation context)."""

    #: Relative paths are resolved against the config file's directory.
    base_dir: Path
    production: bool = False
    #: Password of encrypted key files (``[keys] password_env``): loading and the development-material check.
    password: bytes | None = None
    #: The gateway's public origin (defaults derived from it, e.g. entity IDs).
    origin: str = ""
    #: The whole parsed document, for the few settings shared between tables (the HSM settings of ``[keys]``).
    document: Mapping[str, Any] = field(default_factory=dict)


def context_of(info: ValidationInfo) -> ReadContext:
    """The :class:`ReadContext` a validator runs under (a neutral one when validated without)."""
    ctx = info.context
    read = ctx.get("read") if isinstance(ctx, dict) else None
    return read if isinstance(read, ReadContext) else ReadContext(base_dir=Path("."))


def problem(message: str) -> PydanticCustomError:
    """A validation problem with the project's wording (raise it from a field validator)."""
    return PydanticCustomError(_CUSTOM, "{message}", {"message": message})


class Problems:
    """Collects the problems of one table's cross-field checks; :meth:`check` raises them all at once."""

    def __init__(self) -> None:
        self._items: list[InitErrorDetails] = []

    def add(self, loc: str | Loc, message: str) -> None:
        path: Loc = (loc,) if isinstance(loc, str) else loc
        self._items.append(InitErrorDetails(type=problem(message), loc=path, input=None))

    def __bool__(self) -> bool:
        return bool(self._items)

    def check(self, title: str = "config") -> None:
        """Raise every problem collected (pydantic files them under the table's own key path)."""
        if self._items:
            raise ValidationError.from_exception_data(title, self._items)

    def raise_with(self, exc: ValidationError) -> NoReturn:
        """Raise the problems of ``exc`` (the fields' own) followed by the ones collected here."""
        items: list[InitErrorDetails] = []
        for error in exc.errors(include_url=False):
            kind = problem(str(error["ctx"]["message"])) if error["type"] == _CUSTOM else error["type"]
            detail = InitErrorDetails(type=kind, loc=error["loc"], input=error.get("input"))
            if error["type"] != _CUSTOM and "ctx" in error:
                detail["ctx"] = error["ctx"]
            items.append(detail)
        raise ValidationError.from_exception_data(exc.title, items + self._items)


class Section(BaseModel):
    """Base of every config table model: unknown keys refused, TOML types taken strictly.

    Cross-field checks that must be reported even when another field of the table is wrong (a
    consequence of one mistake named beside it, e.g. a required attribute that is no longer listed)
    go into :meth:`check_raw`, which sees the table as written; the others into an
    ``@model_validator(mode="after")``, which pydantic runs only when every field is valid.
    """

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)

    @classmethod
    def check_raw(cls, raw: Mapping[str, Any], problems: Problems, context: ReadContext) -> None:
        """Checks over the table as written (values not yet validated: test their types)."""

    @model_validator(mode="wrap")
    @classmethod
    def _run_check_raw(cls, data: Any, handler: ModelWrapValidatorHandler[Self], info: ValidationInfo) -> Self:
        if not isinstance(data, Mapping) or cls.check_raw.__func__ is Section.check_raw.__func__:  # type: ignore[attr-defined]
            return handler(data)
        problems = Problems()
        cls.check_raw(data, problems, context_of(info))
        try:
            model = handler(data)
        except ValidationError as exc:
            problems.raise_with(exc)
        problems.check(cls.__name__)
        return model


@dataclass(frozen=True)
class Range:
    """``Annotated[int, Range(1, 65535)]``: a number within bounds (both named in the message)."""

    lo: float
    hi: float

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def check(value: float) -> float:
            if not self.lo <= value <= self.hi:
                raise problem(f"must be between {_number(self.lo)} and {_number(self.hi)}")
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))


def refuse_unless(ok: Callable[[T], object], message: str | Callable[[T], str]) -> AfterValidator:
    """A check of one value (a field type's ``Annotated`` part): the value as it is when ``ok(value)``
    holds, else a problem that says ``message`` (a text, or made from the value)."""

    def check(value: T) -> T:
        if not ok(value):
            raise problem(message(value) if callable(message) else message)
        return value

    return AfterValidator(check)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _non_empty(value: str) -> str:
    if not value.strip():
        raise problem("must not be empty")
    return value


#: A string that is not blank.
Text = Annotated[str, AfterValidator(_non_empty)]


def resolve_path(value: str, base_dir: Path) -> Path:
    """A path from the config: ``~`` expanded, relative ones below the config file's directory."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else base_dir / p


def _to_path(value: object, info: ValidationInfo) -> object:
    if isinstance(value, str):
        return resolve_path(_non_empty(value), context_of(info).base_dir)
    return value  # not a string: the Path schema reports it


def _not_dev_material(value: Path, info: ValidationInfo) -> Path:
    """Production's one rule for key material: no setting may name a file of the development PKI
    (everything ``eid-gateway init`` and ``certs/devpki.py`` write; see :func:`certs.devpki.is_dev_file`)."""
    ctx = context_of(info)
    if ctx.production and is_dev_file(value, ctx.password):
        raise problem(dev_material_message(value))
    return value


def dev_material_message(path: Path) -> str:
    return (
        f"{path} is development key material (marked {DEV_MARKER}, written by `eid-gateway init`); "
        "production refuses it"
    )


def _existing_file(value: Path) -> Path:
    if not value.is_file():
        raise problem(f"file {value} does not exist")
    return value


def _key_file_or_uri(value: str, info: ValidationInfo) -> str:
    if not value.startswith("pkcs11:"):
        _not_dev_material(resolve_path(_non_empty(value), context_of(info).base_dir), info)
    return value


def _material(value: object, info: ValidationInfo) -> Path:
    """A material file's path, checked like :data:`MaterialFile`."""
    if not isinstance(value, str):
        raise problem("must be a path string")
    path = resolve_path(_non_empty(value), context_of(info).base_dir)
    return _not_dev_material(path, info)


def _load_secret(value: object, info: ValidationInfo) -> object:
    path = _material(value, info)
    try:
        return Secret(path, load_secret_file(path))
    except CertLoadError as exc:
        raise problem(str(exc)) from None


def _load_certificate(value: object, info: ValidationInfo) -> object:
    path = _material(value, info)
    try:
        return load_certificate_file(path)
    except CertLoadError as exc:
        raise problem(str(exc)) from None


@dataclass(frozen=True)
class Secret:
    """A secret read from a file (the path kept for messages; the bytes never printed)."""

    path: Path
    value: bytes = field(repr=False)


def check_url(value: str, production: bool) -> str:
    """Absolute URL: https always in production; http also allowed in development. No fragment, and no
    space, control character, quote or angle bracket: RFC 3986 has none of them, and each of these URLs
    ends up in an HTML attribute or an HTTP header (ACS, redirect, footer links)."""
    parts = urlsplit(value)
    allowed = ("https",) if production else ("https", "http")
    unsafe = any(ord(ch) <= 32 or ord(ch) == 127 or ch in '"<>' for ch in value)
    if parts.scheme not in allowed or not parts.netloc or parts.fragment or unsafe:
        raise problem("must be an absolute https URL" + ("" if production else " (http is allowed in development)"))
    return value


def _url(value: str, info: ValidationInfo) -> str:
    return check_url(value, context_of(info).production)


#: An absolute URL (https in production; http also in development).
Url = Annotated[str, AfterValidator(_url)]


#: A file path (resolved against the config directory).
FilePath = Annotated[Path, BeforeValidator(_to_path)]
#: A secret file, read (at least 32 bytes; production refuses development material).
SecretFile = Annotated[Secret, BeforeValidator(_load_secret)]
#: A certificate file (PEM or DER), loaded (production refuses development material).
CertificateFile = Annotated[x509.Certificate, BeforeValidator(_load_certificate)]
#: A key, certificate or secret file: in production it must not be development material.
MaterialFile = Annotated[Path, BeforeValidator(_to_path), AfterValidator(_not_dev_material)]
#: A material file that must exist (a CA file handed to TLS as it is).
ExistingMaterial = Annotated[
    Path, BeforeValidator(_to_path), AfterValidator(_not_dev_material), AfterValidator(_existing_file)
]
#: A private key file (as :data:`MaterialFile`, kept as written) or the ``pkcs11:`` URI of a key in an HSM.
KeyFileOrUri = Annotated[str, AfterValidator(_key_file_or_uri)]


def _env_is_set(name: str) -> str:
    if os.environ.get(name) is None:
        raise problem(f"environment variable {name} is not set")
    return name


#: The name of an environment variable that must be set (secrets come from the environment, never the file).
EnvVar = Annotated[str, AfterValidator(_non_empty), AfterValidator(_env_is_set)]


class KeyMaterial:
    """Loads key pairs (a key and its certificate: two settings), recording each failure under its
    setting's key path; single files are field types (:data:`SecretFile`, :data:`CertificateFile`)."""

    def __init__(self, reader: Reader, password: bytes | None) -> None:
        self.reader = reader
        self.password = password

    def load(self, at: Loc, loader: Callable[[], T]) -> T | None:
        try:
            return loader()
        except CertLoadError as exc:
            self.reader.problem(at, str(exc))
            return None

    def pair(
        self, at: Loc, key: Path | None, cert: Path | None, *, password: bool = True, strength: bool = True
    ) -> KeyPair | None:
        if key is None:
            return None
        if cert is not None:  # a certificate that cannot be read is named under its own setting
            cert_at = (*at[:-1], str(at[-1]).removesuffix("key") + "cert")
            if self.load(cert_at, lambda: load_certificate_file(cert)) is None:
                return None
        secret = self.password if password else None
        kp = self.load(at, lambda: load_key_pair_file(key, cert, secret))
        if strength:
            self.strength(at, kp)
        return kp

    def strength(self, at: Loc, kp: KeyPair | None) -> None:
        if kp is None:
            return
        try:
            check_key_strength(kp.private_key.public_key())
        except SamlError as exc:
            self.reader.problem(at, str(exc))


# --- messages --------------------------------------------------------------------------------------------

_TYPE_WORDS: Final = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "path_type": "a path string",
    "model_type": "a table",
    "dict_type": "a table",
    "model_attributes_type": "a table",
    "dataclass_type": "a table",
}


def key_path(loc: Sequence[str | int]) -> str:
    """``("services", 2, "saml", "acs_urls", 0)`` -> ``services[2].saml.acs_urls[0]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == _CUSTOM:
        return str(error["ctx"]["message"])
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "literal_error":
        return "must be " + str(error["ctx"]["expected"]).replace("'", '"')
    if kind == "is_instance_of" and error.get("ctx", {}).get("class") == "Path":
        return "must be a path string"
    if kind in _TYPE_WORDS:
        not_bool = ", not a boolean" if isinstance(error.get("input"), bool) else ""
        return f"must be {_TYPE_WORDS[kind]}{not_bool}"
    return str(error["msg"])


def messages(exc: ValidationError, at: Loc = ()) -> list[str]:
    """One line per problem: ``<key path>: <what is wrong>``."""
    out: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in (*at, *error["loc"]) if not (isinstance(p, str) and p.startswith("function-")))
        path = key_path(loc)
        out.append(f"{path}: {_message(error)}" if path else _message(error))
    return out


def validate(model: type[M], raw: object, context: ReadContext, at: Loc = ()) -> M:
    """Validate one table (``at`` is its key path); raises :class:`ConfigError` with every problem."""
    try:
        return model.model_validate(raw, context={"read": context})
    except ValidationError as exc:
        raise ConfigError(messages(exc, at)) from None


class Reader:
    """Reads a document table by table and collects the problems of all of them."""

    def __init__(self, context: ReadContext) -> None:
        self.context = context
        self.errors: list[str] = []

    def table(self, model: type[M], raw: object, at: str | Loc) -> M | None:
        """Validate one table; ``None`` (and its problems recorded) when it is not valid."""
        path: Loc = (at,) if isinstance(at, str) else at
        return self.run(lambda: validate(model, raw, self.context, path))

    def run(self, parse: Callable[[], T]) -> T | None:
        """Run a section parser that raises :class:`ConfigError`, recording its problems."""
        try:
            return parse()
        except ConfigError as exc:
            self.errors.extend(exc.errors)
            return None

    def problem(self, at: str | Loc, message: str) -> None:
        path: Loc = (at,) if isinstance(at, str) else at
        self.errors.append(f"{key_path(path)}: {message}")

    def check(self) -> None:
        """Raise :class:`ConfigError` with every problem recorded (each once)."""
        if self.errors:
            raise ConfigError(list(dict.fromkeys(self.errors)))
