"""What both ends share: the catalog and the privacy rules, the event record and the package schema, the
control protocol and its command table, configuration, paths, limits and error codes. Imports nothing
from the emitter, the thin clients, the daemon or the backend.
"""
