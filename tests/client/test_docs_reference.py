"""docs/ names every command, option, configuration key, protocol command, error code and module the
code defines, and its examples are ones the code accepts. Each list is read from the code (the
argparse parsers, the config Structs, the handler registry, the error classes, the source tree), so a
new option or command without its line in the docs fails here."""

from __future__ import annotations

import argparse
import json
import re
from datetime import date
from pathlib import Path

import msgspec
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def code_tokens(text: str) -> set[str]:
    """Every word of every inline code span (`…`) of a Markdown text, fenced blocks left out."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    spans = re.findall(r"(?<!`)`([^`\n]+)`(?!`)", text)
    return {token for span in spans for token in re.split(r"[\s|\\\[\](),=]+", span) if token}


def fenced_block(text: str, language: str) -> str:
    match = re.search(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)
    assert match, f"no ```{language} block"
    return match.group(1)


def parser_words(parser: argparse.ArgumentParser) -> tuple[set[str], set[str]]:
    """(subcommand names and positional choices, option strings) of a parser and all its subparsers."""
    commands: set[str] = set()
    options: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands.add(name)
                sub_commands, sub_options = parser_words(sub)
                commands |= sub_commands
                options |= sub_options
        elif action.option_strings:
            options.update(action.option_strings)
        elif action.choices:
            commands.update(action.choices)
    return commands, options


def missing(names, tokens: set[str]) -> list[str]:
    return sorted(name for name in names if name not in tokens)


# --- cli.md -----------------------------------------------------------------------------------------
def test_cli_md_names_every_branchpy_telemetry_command_and_option():
    from branchpy_telemetry.client.thin.cli.main import build_parser

    commands, options = parser_words(build_parser())
    tokens = code_tokens(doc("cli.md"))
    assert not missing(commands, tokens), f"docs/cli.md lacks commands: {missing(commands, tokens)}"
    assert not missing(options, tokens), f"docs/cli.md lacks options: {missing(options, tokens)}"


def test_cli_md_names_every_option_of_the_daemon_and_the_backend():
    from branchpy_telemetry.backend.cli import build_parser as backend_parser
    from branchpy_telemetry.daemon.main import build_parser as daemon_parser

    tokens = code_tokens(doc("cli.md"))
    for parser in (daemon_parser(), backend_parser()):
        commands, options = parser_words(parser)
        assert not missing(commands, tokens), f"{parser.prog}: docs/cli.md lacks {missing(commands, tokens)}"
        assert not missing(options, tokens), f"{parser.prog}: docs/cli.md lacks {missing(options, tokens)}"


def test_cli_md_names_every_option_of_the_bridge(capsys):
    from branchpy_telemetry.client.thin.bridge import main

    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    options = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", capsys.readouterr().out))
    assert "--no-start" in options
    tokens = code_tokens(doc("cli.md"))
    assert not missing(options, tokens), f"docs/cli.md lacks bridge options: {missing(options, tokens)}"


def config_keys(struct: msgspec.Struct, prefix: str = "") -> list[str]:
    """Every leaf key of a config Struct instance, dotted (`telemetry.auto.interval`)."""
    keys = []
    for name in struct.__struct_fields__:
        value = getattr(struct, name)
        if isinstance(value, msgspec.Struct):
            keys += config_keys(value, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_cli_md_names_every_config_key_and_its_environment_variable():
    from branchpy_telemetry.client.contracts.config import KEYS, Config, env_var_for

    keys = config_keys(Config())
    assert sorted(keys) == sorted(KEYS), "client/contracts/config.py: KEYS and the Config Struct disagree"
    tokens = code_tokens(doc("cli.md"))
    assert not missing(keys, tokens), f"docs/cli.md lacks config keys: {missing(keys, tokens)}"
    variables = [env_var_for(key) for key in keys]
    assert not missing(variables, tokens), f"docs/cli.md lacks variables: {missing(variables, tokens)}"


def test_cli_md_names_every_backend_setting():
    from branchpy_telemetry.backend.settings import BackendSettings

    tokens = code_tokens(doc("cli.md"))
    fields = BackendSettings.__struct_fields__
    assert not missing(fields, tokens), f"docs/cli.md lacks backend settings: {missing(fields, tokens)}"


# --- control-protocol.md ---------------------------------------------------------------------------
def test_control_protocol_md_names_every_command_field_and_error_code():
    from branchpy_telemetry.client.contracts.commands import BACKGROUND_COMMANDS, COMMAND_NAMES
    from branchpy_telemetry.client.contracts.errors import ERROR_CLASSES
    from branchpy_telemetry.client.contracts.protocol import ErrorBody, Progress, Reply, Request
    from branchpy_telemetry.daemon.control.handlers import REGISTRY

    tokens = code_tokens(doc("control-protocol.md"))
    assert sorted(REGISTRY) == sorted(COMMAND_NAMES)
    assert not missing(REGISTRY, tokens), f"docs/control-protocol.md lacks {missing(REGISTRY, tokens)}"
    assert not missing(BACKGROUND_COMMANDS, tokens)
    fields = {f for struct in (Request, Reply, ErrorBody, Progress) for f in struct.__struct_fields__}
    assert not missing(fields, tokens), f"docs/control-protocol.md lacks fields {missing(fields, tokens)}"
    codes = {cls.code for cls in ERROR_CLASSES}
    assert not missing(codes, tokens), f"docs/control-protocol.md lacks codes {missing(codes, tokens)}"


def test_the_exit_codes_in_control_protocol_md_are_the_ones_the_cli_uses():
    from branchpy_telemetry.client.contracts.errors import EXIT_CODE_BY_ERROR_CODE

    rows = re.findall(r"^\| `([a-z_]+)` \| (\d) \|", doc("control-protocol.md"), flags=re.M)
    documented = {code: int(exit_code) for code, exit_code in rows}
    assert documented == EXIT_CODE_BY_ERROR_CODE


# --- architecture.md -------------------------------------------------------------------------------
def test_architecture_md_names_every_module_by_its_path():
    modules = sorted(path.relative_to(ROOT).as_posix() for folder in ("client", "daemon", "backend")
                     for path in (ROOT / folder).rglob("*.py") if "vscode" not in path.parts)
    tokens = code_tokens(doc("architecture.md"))
    assert not missing(modules, tokens), f"docs/architecture.md lacks modules: {missing(modules, tokens)}"
    named = {t for t in tokens if re.fullmatch(r"(client|daemon|backend)/[\w/]+\.py", t)}
    gone = sorted(path for path in named if not (ROOT / path).is_file())
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"


# --- package-schema.md and catalog-format.md -------------------------------------------------------
def test_the_package_example_decodes_passes_the_privacy_rules_and_the_bundled_catalog():
    from branchpy_telemetry.client.contracts.catalog import load_catalog
    from branchpy_telemetry.client.contracts.declared import filter_package
    from branchpy_telemetry.client.contracts.redaction import find_violations
    from branchpy_telemetry.client.contracts.schema import package_decoder

    example = fenced_block(doc("package-schema.md"), "json").encode()
    package = package_decoder.decode(example)
    assert find_violations(json.loads(example)) == []
    _, dropped = filter_package(package, load_catalog(), date(2026, 12, 3))
    assert dropped == {}


def test_package_schema_md_names_every_field():
    from branchpy_telemetry.client.contracts.schema import SCHEMA_FIELD_NAMES

    tokens = code_tokens(doc("package-schema.md"))
    assert not missing(SCHEMA_FIELD_NAMES, tokens), \
        f"docs/package-schema.md lacks fields: {missing(SCHEMA_FIELD_NAMES, tokens)}"


def test_the_catalog_example_is_valid_and_the_format_is_named_whole():
    from branchpy_telemetry.client.contracts.catalog import (
        ATTR_TYPES,
        CATALOG_RULES,
        CatalogFile,
        ErrorsSpec,
        EventSpec,
        parse_catalog,
    )

    text = doc("catalog-format.md")
    catalog = parse_catalog(fenced_block(text, "toml").encode(), "docs/catalog-format.md")
    used = {type(attr).__name__ for event in catalog.events.values() for attr in event.spec.attrs.values()}
    assert len(used) == len(ATTR_TYPES), "the example declares one attribute of every type"
    tokens = code_tokens(text)
    fields = {f for struct in (CatalogFile, ErrorsSpec, EventSpec) for f in struct.__struct_fields__}
    for names in (ATTR_TYPES, CATALOG_RULES, fields):
        assert not missing(names, tokens), f"docs/catalog-format.md lacks {missing(names, tokens)}"
