"""docs/http-api.md names every route of the app (from Flask's url_map), every error code the backend
can answer and every scope, so a new route or code without its line in the docs fails here."""

from __future__ import annotations

import re
from pathlib import Path

from branchpy_telemetry.backend import errors, wsgi_server
from branchpy_telemetry.backend.app import create_app
from branchpy_telemetry.backend.auth import SCOPES
from branchpy_telemetry.backend.settings import BackendSettings
from branchpy_telemetry.backend.sinks import base
from branchpy_telemetry.backend.sinks.memory import MemorySink

HTTP_API = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"


def code_spans(text: str) -> set[str]:
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return set(re.findall(r"(?<!`)`([^`\n]+)`(?!`)", text))


def subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *subclasses(sub)]
    return found


def test_http_api_md_names_every_route_with_its_method():
    app = create_app(BackendSettings(), MemorySink())
    routes = {f"{method} {rule.rule}" for rule in app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert len(routes) > 15
    spans = code_spans(HTTP_API.read_text(encoding="utf-8"))
    missing = sorted(routes - spans)
    assert not missing, f"docs/http-api.md lacks routes: {missing}"
    documented = {span for span in spans if re.fullmatch(r"(GET|POST|PUT|PATCH|DELETE) /\S*", span)}
    assert not sorted(documented - routes), f"docs/http-api.md names routes the app does not have: " \
                                            f"{sorted(documented - routes)}"


def test_http_api_md_names_every_error_code_and_scope():
    codes = {cls.code for cls in [errors.ApiError, *subclasses(errors.ApiError)]}
    codes |= set(errors._HTTP_CODES.values())
    codes |= {code for code, _message in wsgi_server._ERRORS.values()} | {"http_error"}
    codes |= {base.SinkError.code, base.SinkBusyError.code, base.InvalidPackageError.code}
    spans = code_spans(HTTP_API.read_text(encoding="utf-8"))
    missing = sorted((codes | set(SCOPES)) - spans)
    assert not missing, f"docs/http-api.md lacks: {missing}"
