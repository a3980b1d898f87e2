"""What runs inside BranchPy: `emit()`, `track()`, the event stamp and the spool's append/rotate protocol.
Imports only the contracts and the plumbing.
"""
