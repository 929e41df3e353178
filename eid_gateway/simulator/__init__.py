"""The embedded eID-Server simulator: a TEST FACILITY, refused in production mode.

Entry points: :func:`simulator_routes` (routes for ``app.add_routes``), :class:`Simulator` (the same
plus access to the core), :func:`run_simulated_client` (AusweisApp's stand-in).
"""

from eid_gateway.simulator.client import SimulatedClientError, run_simulated_client
from eid_gateway.simulator.core import SimulatedEidServer, SimulatorConfig, SimulatorRefused
from eid_gateway.simulator.identities import TestCard, default_identities
from eid_gateway.simulator.server import Simulator, simulator_routes

__all__ = [
    "SimulatedClientError",
    "SimulatedEidServer",
    "Simulator",
    "SimulatorConfig",
    "SimulatorRefused",
    "TestCard",
    "default_identities",
    "run_simulated_client",
    "simulator_routes",
]
