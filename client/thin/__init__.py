"""The thin clients: the `branchpy telemetry` CLI and the VS Code stdio bridge, which send commands to the
daemon over the control socket, and what finds, starts and installs the daemon.
"""
