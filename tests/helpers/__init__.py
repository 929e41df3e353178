"""The test suite's one toolkit, shared by every test directory (import it as ``helpers``).

``tests/`` is on ``sys.path`` because ``pythonpath = ["tests"]`` in pyproject.toml says so (not because of
where pytest happened to find a conftest); the fixtures built on these modules live in ``tests/conftest.py``.

- :mod:`helpers.ports`: free loopback ports and bound sockets
- :mod:`helpers.clocks`: the one fake clock
- :mod:`helpers.keys`: the development key set, generated once per run and reused by test gateways
- :mod:`helpers.chromium`: where Debian's Chromium is and how the browser tests start it
- :mod:`helpers.cli`: the ``eid-gateway`` command line run in this process (``service add`` among others)
- :mod:`helpers.gateway`: an in-process gateway on a loopback port, a scripted browser, AusweisApp
  played by the simulator client, and the demo service's sign-in steps
- :mod:`helpers.eid_samples`: one complete TR-03130 citizen record, a useID exchange's PSK and session ID,
  a useID request, the getResult that answers it, a TC Token, and the Identity made of a record
- :mod:`helpers.kiosk_agent`: the real kiosk agent as a process and the kiosk table of its gateway
- :mod:`helpers.sse`: a server-sent event stream read on its own thread
- :mod:`helpers.saml_post`, :mod:`helpers.wallet_sim`: the SAML POST page read back; the test wallet process

A test module that needs one of these imports it from here; ``tests/test_suite_rules.py`` fails when a
module outside this package defines its own ``free_port`` or fake clock again.
"""
