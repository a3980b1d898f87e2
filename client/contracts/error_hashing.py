"""Error messages: reduced to a template, then hashed, so the same failure groups
across installs while neither the text nor anything in it can be recovered.

The template replaces what varies between installs — quoted literals, e-mail
addresses, paths and URLs (found with the privacy rules' own path pattern,
over the same folded and decoded text), UUIDs, hex, numbers — and then every
remaining word that is not in `error_vocabulary.txt` (the words Python's
standard library and the OS use in their own error messages): a token holding
a digit, `_`, `@` or any non-letter, a user name, a host, a file name all
become `<w>`. So a hash cannot confirm a guessed user value (a guess is not
in the template), and `permission denied for user <w>` groups everywhere.
The hash is `sha256:` + hex over the error type (only when it may leave,
`fixed_formats.public_error_type`; else `<type>`) and the template.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from branchpy_telemetry.client.contracts.fixed_formats import public_error_type
from branchpy_telemetry.client.contracts.privacy import PATH_PATTERN, folded_and_decoded

VOCABULARY_FILE = Path(__file__).with_name("error_vocabulary.txt")

# Like the path pattern, each pattern opens with a character class so the engine skips
# the positions that cannot start a match in C.
_QUOTED = re.compile(
    r"['\"`‘“«「](?:(?<=(?<!\w)')[^'\n]*'(?!\w)|(?<=\")[^\"\n]*\"|(?<=`)[^`\n]*`|(?<=‘)[^’\n]*’"
    r"|(?<=“)[^”\n]*”|(?<=«)[^»\n]*»|(?<=「)[^」\n]*」)"
)
_EMAIL = re.compile(r"(?<![\w.+\-])[\w.+\-]++@[\w\-]+(?:\.[\w\-]+)+")
_PATH_TAIL = re.compile(r"[^\s'\"`<>()\[\]{},;]*")
_UUID = re.compile(
    r"[0-9a-fA-F](?<![0-9A-Za-z][0-9a-fA-F])[0-9a-fA-F]{7}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
    r"-[0-9a-fA-F]{12}(?![0-9A-Za-z])"
)
_HEX = re.compile(r"[0-9a-fA-F](?<!\w[0-9a-fA-F])(?:(?<=0)[xX][0-9a-fA-F]+|[0-9a-fA-F]{7,})(?!\w)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_REPEATED_PATH = re.compile(r"<path>(?:\s+<path>)+")


def _hex_or_word(m: re.Match) -> str:
    """`0x…` always; a bare run of 8+ hex digits only when it mixes digits and letters."""
    word = m.group()
    if word[1:2] in ("x", "X") or not (word.isdigit() or word.isalpha()):
        return "<hex>"
    return word


_TOKEN_BREAKS = frozenset(" \t\n\r\v\f'\"`<>()[]{},;=")


def _replace_paths(text: str) -> str:
    """Replace each path (or URL), widened to the token around it, with `<path>` (`<url>`)."""
    out: list[str] = []
    pos = 0
    m = PATH_PATTERN.search(text)
    while m is not None:
        start = m.start()
        while start > pos and text[start - 1] not in _TOKEN_BREAKS and not text[start - 1].isspace():
            start -= 1
        out.append(text[pos:start])
        out.append("<url>" if text.startswith("://", m.start()) else "<path>")
        pos = _PATH_TAIL.match(text, m.end()).end()
        m = PATH_PATTERN.search(text, pos)
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def normalize_error_message(message: str) -> str:
    """The message's template (see the module docstring)."""
    text = folded_and_decoded(message)
    text = _QUOTED.sub("<str>", text)
    if "@" in text:
        text = _EMAIL.sub("<email>", text)
    text = _replace_paths(text)
    if "<path>" in text:
        text = _REPEATED_PATH.sub("<path>", text)
    if "-" in text:
        text = _UUID.sub("<uuid>", text)
    text = _HEX.sub(_hex_or_word, text)
    text = _NUMBER.sub("<n>", text)
    return _REPEATED_WORD.sub("<w>", " ".join(_template_token(t) for t in text.split()))


_PLACEHOLDER = re.compile(r"<(?:str|email|path|url|uuid|hex|n)>")
_EDGE_PUNCTUATION = ".,:;!?()[]{}\"'`"
_REPEATED_WORD = re.compile(r"<w>(?: <w>)+")


@functools.cache
def vocabulary() -> frozenset[str]:
    return frozenset(VOCABULARY_FILE.read_text(encoding="ascii").split())


def _template_token(token: str) -> str:
    """A vocabulary word (lower-cased) or a placeholder stays, with its edge punctuation; else `<w>`."""
    core = token.strip(_EDGE_PUNCTUATION)
    if not core:
        return token
    start = token.index(core)
    head, tail = token[:start], token[start + len(core):]
    if _PLACEHOLDER.fullmatch(core):
        return token
    if core.isascii() and core.isalpha() and core.lower() in vocabulary():
        return head + core.lower() + tail
    return head + "<w>" + tail


MAX_MESSAGE_LENGTH = 1024  # only this much of a message is normalized and hashed


def hash_error_message(message: str, error_type: str | None = None,
                       type_modules: frozenset[str] = frozenset()) -> str:
    """`sha256:` + 64 hex over the public error type and the message template
    (its first MAX_MESSAGE_LENGTH characters; the same failure groups anyway)."""
    public_type = public_error_type(error_type, type_modules) if error_type else ""
    return _hash_error_message(message[:MAX_MESSAGE_LENGTH], "<type>" if public_type is None else public_type)


@functools.lru_cache(maxsize=4096)
def _hash_error_message(message: str, error_type: str) -> str:
    text = f"{error_type}\n{normalize_error_message(message)}"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    return "sha256:" + digest.hexdigest()
