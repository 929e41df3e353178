"""``python -m saml``: see :mod:`saml.cli`."""

from saml.cli import main

raise SystemExit(main())
