"""The neutral core: the types every layer shares (the eID-Server port, what crosses it, log tags).

Frontends, the flow, backends, metrics and the citizen pages all import from here; the core itself
imports nothing from frontends, backends or web (``tests/test_import_graph.py`` checks it).
"""
