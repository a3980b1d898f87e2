"""The export pipeline: spool sources read from their checkpoints, records sanitized by the catalog and the
privacy rules, aggregated and written as size-capped package files with their redaction report; `preview`
checks a package as the server will.
"""
