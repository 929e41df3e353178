"""The TR-03110 package is a leaf (issue 14): none of its modules imports the gateway, the kiosk
package, the certificate tools or the SAML toolkit, so each of them can use it without a circle.

Checked in a fresh interpreter: in the test process everything is imported already."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import importlib, json, pkgutil, sys
import tr03110
names = [m.name for m in pkgutil.walk_packages(tr03110.__path__, "tr03110.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_tr03110_imports_no_project_package() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert {
        "tr03110.oids",
        "tr03110.tlv",
        "tr03110.apdu",
        "tr03110.cvc",
        "tr03110.security_infos",
        "tr03110.crypto",
    } <= set(found["modules"])
    assert not {"eid_gateway", "certs", "cardreader", "saml"} & set(found["loaded"])
