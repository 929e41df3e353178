"""The ``eid-gateway`` command line run in this process, as an operator would type it."""

from __future__ import annotations

import io

from eid_gateway.cli import main


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``eid-gateway ARGV``: its exit code, standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def service_add(
    service_id: str, name_de: str, attributes: str, *options: str, name_en: str | None = None
) -> tuple[str, str]:
    """``eid-gateway service add --id SERVICE_ID --name-de NAME_DE [--name-en NAME_EN] --attributes ATTRIBUTES
    OPTIONS...``, which must succeed: its standard output (the ``[[services]]`` table, when no ``--config``
    names a file to append it to) and standard error."""
    names = ["--name-de", name_de] + ([] if name_en is None else ["--name-en", name_en])
    code, out, err = run_cli("service", "add", "--id", service_id, *names, "--attributes", attributes, *options)
    assert code == 0, err
    return out, err
