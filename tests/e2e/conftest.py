"""End-to-end fixtures: a recording HTTP server standing in for the backend's upload endpoint."""

from __future__ import annotations

import pytest

from ..daemon.recording_server import RecordingServer


@pytest.fixture
def server():
    """A real HTTP server on a random port that records every request (tests/daemon/recording_server.py)."""
    srv = RecordingServer().start()
    yield srv
    srv.stop()
