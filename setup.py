"""Only the optional compiled accelerator; all metadata is in pyproject.toml.

`optional=True`: without a compiler the package installs and the exporter
uses its pure-Python loop (same results).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("branchpy_telemetry.daemon._export_fast", ["daemon/_export_fast.pyx"], optional=True),
    ],
)
