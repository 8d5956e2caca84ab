"""A local WhatsApp Web simulator: a page exposing `window.WPP` (wa-js names and shapes) and a control server.

Start it with `python -m session_workers.simulator --port 8091`, or in-process with `SimulatorServer`.
"""

from session_workers.simulator.server import SimulatorServer, SimulatorState, create_app

__all__ = ["SimulatorServer", "SimulatorState", "create_app"]
