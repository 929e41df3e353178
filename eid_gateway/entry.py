"""The ``eid-gateway`` console script.

``kiosk-agent`` and ``readers`` run on a kiosk PC, which needs none of the gateway's stack (lxml,
xmlsec, redis, pydantic, the SAML and certificate tools): they go to the card-reader package before
:mod:`eid_gateway.cli`, whose imports are the whole gateway, is loaded. Everything else is the CLI.
The kiosk's own script ``eid-kiosk-agent`` (cardreader.agent:main) needs no dispatch at all.
"""

from __future__ import annotations

import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "kiosk-agent":
        from cardreader.agent import main as agent_main

        return agent_main(argv[1:])
    if argv and argv[0] == "readers":
        from cardreader.cli import readers_main

        return readers_main(argv[1:])
    from eid_gateway.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
