"""Plumbing every part uses and that holds no contract: atomic file writes, file locks, logging, the
rotating log file, systemd unit text, the garbage-collector pause.
"""
