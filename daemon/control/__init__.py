"""The control plane: the ROUTER/PUB sockets, the request loop and its error boundary, the single-instance
lock, systemd readiness, and the command handlers.
"""
