"""The privacy rules: the deny-list both ends run behind the event catalog.

The catalog (`catalog.py`, applied by `declared.py`) decides what may leave at
all; these rules are the safety net for every string it lets through (a
declared `pattern` value, and on the server every string of a package, keys
included). `check_string` names the first rule a string breaks,
`attr_key_rule` the rule a text attr's key breaks; `redaction.find_violations`
walks a package with both. Error messages are reduced to a template and
hashed in `error_hashing.py`.

What counts as a raw path (decisions documented here, tested in
tests/client/test_privacy_table.py):
- absolute POSIX/rooted paths: a separator at a token boundary followed by a
  segment and another separator (`/a/b`, `\\a\\b`, `/home/José/`); a single
  segment after `/` counts when it starts with a letter, `.`, `_`, `$` or `~`
  (`/usr`, `/.ssh`) — a path root alone names a location. `/4`, ` / `, `3/4`,
  `and/or`, `N/A`, `2026/11/28` do not (no boundary before the `/`, or a
  digit segment).
- home paths `~/…`, `~user/…`, and paths rooted at a variable (`$HOME/…`,
  `${HOME}/…`, `%APPDATA%\\…`); Windows drives `C:\\…`, `c:/…` and
  drive-relative `C:name.ext`; UNC `\\\\host…`; any `file:` URI (any case).
- URLs: anything with `://`, with or without a path — a host plus path
  identifies a file or a site as well as a path does.
- `./x`, `../x`, and relative paths with a separator whose last segment has
  a file extension (`game/script.rpy`, `..\\x.rpy`). MIME types
  (`application/vnd.api+json`, `text/plain`) are exempt; `a/b` without an
  extension passes (command names, ratios).
Unicode cannot hide a path: text is NFKC-normalized, slash/backslash/colon/
tilde/dot look-alikes are mapped, invisible format characters removed, and
percent-encoding (repeated), HTML entities and `\\uXXXX`/`\\xXX` escapes are
decoded and checked too.

Personal data: an e-mail address (`name@host.tld`: a local part, `@`, a
domain with a dot and an alphabetic top-level label) names a person. Not
addresses: `@decorator`, `pkg@1.2.3`, `python@3.12`, `user@localhost`,
`image@sha256:…` (no alphabetic top-level label after a dot).

Secrets: attrs whose key names a credential (`password`, `api_key`,
`authToken`, `client_secret`, `cookie`, `private_key`) are dropped whatever
their value (`attr_key_rule`); counts and metadata about them pass
(`max_tokens`, `token_count`, `password_length`, `hotkey`).

Content: a string with a newline (`\\n \\r \\v \\f`, U+001C-1E, U+0085,
U+2028/2029, also percent-encoded) or over MAX_STRING_LENGTH characters, and
attrs whose key names free text (`is_content_key`). For an over-long string
the named rule is best effort (a path is looked for in its first LONG_SCAN
characters): it is dropped whichever rule it breaks.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from urllib.parse import unquote

from branchpy_telemetry.client.contracts.credential_shapes import (
    MIN_SECRET_LENGTH,
    RULE_SECRET_VALUE,
    secret_value_rule,
)

RULE_RAW_PATH = "raw_path"
RULE_CONTENT_FIELD = "content_field"
RULE_MULTILINE = "multiline"
RULE_TOO_LONG = "too_long"
RULE_EMAIL = "email_address"
RULE_SECRET_FIELD = "secret_field"  # a text attr whose key names a credential, dropped
RULES: tuple[str, ...] = (RULE_RAW_PATH, RULE_EMAIL, RULE_CONTENT_FIELD, RULE_SECRET_FIELD, RULE_SECRET_VALUE,
                          RULE_MULTILINE, RULE_TOO_LONG)

MAX_STRING_LENGTH = 200
LONG_SCAN = 1024  # how much of an over-long string is searched for a path (it is dropped anyway)

# --- fast path ---------------------------------------------------------------
# The one definition of what sends a string to the character-based rules: a
# string with none of TRIGGER_CHARS, no control or non-ASCII character and no
# letter right before a `:` (drive letters, `file:`, URL schemes) cannot hold a
# path, an e-mail address or a newline. Timestamps and `sha256:` pass. Every
# fast path derives from these (`_SUSPICIOUS` here, `redaction.FAST_TABLE`, the
# server's byte gate); tests/client/test_privacy_fast_paths.py proves each one
# refuses every rule's canonical violators. Credentials by shape are found by
# `secret_value_rule`, which every path runs too.
TRIGGER_CHARS = "/\\~%&@"
TRIGGER_AFTER_LETTER = ":"
_SUSPICIOUS = re.compile("[" + re.escape(TRIGGER_CHARS) + "\x00-\x1f\x7f-\U0010ffff]|[A-Za-z]"
                         + re.escape(TRIGGER_AFTER_LETTER))

# --- normalization -----------------------------------------------------------
_LOOKALIKES = {
    # slashes
    **dict.fromkeys((0x2215, 0x2044, 0xFF0F, 0x29F8, 0x2571, 0x27CB, 0x1735, 0x29F6, 0x2AFD, 0x2AFB), "/"),
    **dict.fromkeys((0x0338, 0x0337, 0x20EB), "/"),
    # backslashes
    **dict.fromkeys((0xFF3C, 0x29F5, 0x2216, 0x29F9, 0x2572, 0x27CD, 0xFE68, 0x20E5), "\\"),
    # colons
    **dict.fromkeys((0x2236, 0xA789, 0x02D0, 0x0589, 0x05C3, 0xFE13, 0xFE55, 0xFF1A, 0x1361, 0x205A), ":"),
    # tildes
    **dict.fromkeys((0x223C, 0xFF5E, 0x2053, 0x301C, 0x02DC, 0x1FC0), "~"),
    # full stops (an extension hidden behind a look-alike dot)
    **dict.fromkeys((0x3002, 0xFF61, 0xFE52, 0x2024, 0xFF0E), "."),
    # invisible format characters
    **dict.fromkeys((0x00AD, 0x061C, 0x180E, 0xFEFF, *range(0x200B, 0x2010), *range(0x202A, 0x202F),
                     *range(0x2060, 0x2065), *range(0x2066, 0x206A)), None),
}
_ESCAPED = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})")
_PERCENT_U = re.compile(r"%u([0-9a-fA-F]{4})")  # IIS/JavaScript escape(): %u002F
_NEWLINE = re.compile("[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


def _fold_unicode(text: str) -> str:
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text.translate(_LOOKALIKES)).translate(_LOOKALIKES)


def _decode_layers(text: str) -> str:
    """Undo percent-encoding (`%2F`, `%u002F`, any number of layers), HTML entities and
    backslash escapes, until nothing changes. Each layer shortens the text, so this ends."""
    if "%" not in text and "&" not in text and "\\" not in text:
        return text
    for _ in range(len(text)):
        before = text
        if "%" in text:
            text = unquote(_PERCENT_U.sub(lambda m: chr(int(m.group(1), 16)), text))
        if "&" in text:
            text = html.unescape(text)
        if "\\" in text:
            text = _ESCAPED.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)
        text = _fold_unicode(text)
        if text == before:
            break
    return text


def folded_and_decoded(text: str) -> str:
    """`text` with look-alikes folded and every encoding layer decoded: what the rules read."""
    return _decode_layers(_fold_unicode(text))


def _variants(text: str) -> tuple[str, ...]:
    folded = _fold_unicode(text)
    if "%" in folded or "&" in folded or "\\" in folded:
        decoded = _decode_layers(folded)
        if decoded != folded:
            return folded, decoded
    return (folded,)


# --- path patterns (over folded text) ----------------------------------------
# Every alternative starts at one of `: \\ ~ / . $ %`, consumed by one leading
# character class so the regex engine skips all other positions in C; each
# branch then checks what precedes with fixed-width look-behinds. A match
# starts at that character (normalization widens it to the whole token).
_SEG = r"[^\s/\\]"
_EXT = r"\.(?=[A-Za-z0-9]{0,9}[A-Za-z])[A-Za-z0-9]{1,10}(?![\w+\-]|\.\w)"
_MIME_TOP = ("application", "audio", "font", "image", "message", "model", "multipart", "text", "video")
_NOT_MIME_VND = "(?:(?!(?:vnd|prs)\\.)|" + "".join(f"(?<!{t}/)" for t in _MIME_TOP) + ")"
_PATH_PARTS = (
    r"(?<=:)[/\\]{2}",  # URL scheme:// (any scheme, with or without a path)
    r"(?<=(?<![A-Za-z0-9])[Ff][Ii][Ll][Ee]:)(?=\S)",  # file: URI, any case
    r"(?<=(?<!\w)[^\W\d_]:)[/\\]",  # drive C:\ C:/ (any letter: a Cyrillic С is no disguise)
    rf"(?<=(?<!\w)[^\W\d_]:)[^\s/\\:]*{_EXT}",  # drive-relative C:x.rpy
    r"(?<=(?<!\\)\\)\\[^\s\\/]",  # UNC \\host
    r"(?<=~)[^\s/\\~]*+[/\\]",  # home ~/ ~user/
    r"(?<=\$)\{?[A-Za-z_]\w*+\}?[/\\]",  # rooted at a variable: $HOME/, ${HOME}/
    r"(?<=%)[A-Za-z_][\w()]*+%[/\\]",  # rooted at a variable: %USERPROFILE%\\
    rf"(?<=(?<![\w/\\])[/\\])[/\\]*+{_SEG}++[/\\]",  # rooted, two segments /a/
    rf"(?<=(?<![\w/\\])/)/*+(?:[^\W\d]|[.$~]){_SEG}*",  # rooted, one segment /usr
    r"(?<=(?<![\w.])\.)\.?[/\\](?=\S)",  # ./x ../x
    rf"(?<=\S[/\\]){_NOT_MIME_VND}{_SEG}*?{_EXT}",  # relative: a separator, then a name with an extension
)
PATH_PATTERN = re.compile(r"[:\\~/.$%](?:" + "|".join(f"(?:{p})" for p in _PATH_PARTS) + ")")


def contains_raw_path(text: str) -> bool:
    """True when `text` holds a raw path anywhere (see the module docstring)."""
    if _SUSPICIOUS.search(text) is None:
        return False
    return any(PATH_PATTERN.search(v) is not None for v in _variants(text))


@functools.lru_cache(maxsize=16384)
def _check_slow(text: str) -> str | None:
    variants = _variants(text)
    rule = _path_or_address(variants)
    if rule is not None:
        return rule
    if len(text) >= MIN_SECRET_LENGTH and any(secret_value_rule(v) is not None for v in variants):
        return RULE_SECRET_VALUE
    if any(_NEWLINE.search(v) is not None for v in variants):
        return RULE_MULTILINE
    if len(text) > MAX_STRING_LENGTH:
        return RULE_TOO_LONG
    return None


def check_string(text: str) -> str | None:
    """The first rule `text` breaks (raw_path, email_address, secret_value, multiline, too_long), or None."""
    if len(text) <= MAX_STRING_LENGTH:
        if _SUSPICIOUS.search(text) is None:
            return secret_value_rule(text) if len(text) >= MIN_SECRET_LENGTH else None
        return _check_slow(text)
    return _check_long(text)


def _check_long(text: str) -> str:
    """A long string is dropped whatever else it breaks; which rule gets named
    is best effort (a path, then an address, is looked for in the first
    LONG_SCAN characters) so that megabytes of content cost a bounded scan."""
    head = text[:LONG_SCAN]
    rule = _path_or_address(_variants(head)) if _SUSPICIOUS.search(head) is not None else None
    if rule is not None:
        return rule
    if secret_value_rule(head) is not None:
        return RULE_SECRET_VALUE
    return RULE_MULTILINE if _NEWLINE.search(text) is not None else RULE_TOO_LONG


def _path_or_address(variants: tuple[str, ...]) -> str | None:
    """raw_path or email_address when a variant of the text holds one (a path first), else None."""
    if any(PATH_PATTERN.search(v) is not None for v in variants):
        return RULE_RAW_PATH
    if any(_EMAIL_ADDRESS.search(v) is not None for v in variants):
        return RULE_EMAIL
    return None


# --- e-mail addresses (over folded text) ---------------------------------------
# Opens with `@` so the engine skips to each `@` in C; a local-part character
# must precede it; the domain needs a dot and an alphabetic top-level label.
_EMAIL_ADDRESS = re.compile(r"@(?<=[\w.+\-'!#$&*=?^`{|}~]@)(?:[\w\-]+\.)+[^\W\d_]{2,}(?![\w\-])")


# --- attr keys: content and secrets -----------------------------------------
_CONTENT_WORDS = frozenset({
    "content", "contents", "text", "texts", "snippet", "snippets", "body", "bodies", "line", "lines",
    "script", "scripts", "dialogue", "dialogues", "dialog", "dialogs", "message", "messages", "msg",
    "msgs", "sourcecode", "srccode", "html", "markdown", "transcript", "traceback", "stacktrace",
    "stdout", "stderr", "prompt", "comment", "comments", "note", "notes", "payload", "excerpt",
    "quote", "utterance", "paragraph", "sentence", "userinput", "rawinput",
})
_CODE_PREFIXES = frozenset({"source", "src", "raw", "program", "user", "snippet", "script"})
_QUALIFIERS = frozenset({"raw", "full", "value", "data", "str", "string", "preview", "sample", "excerpt",
                         "original", "input", "output", "dump", "blob"})
_SECRET_WORDS = frozenset({
    "password", "passwords", "passwd", "passwds", "pwd", "pw", "pass", "passphrase", "passcode", "pin",
    "secret", "secrets", "token", "tokens", "apikey", "apikeys", "credential", "credentials", "creds",
    "cred", "cookie", "cookies", "privatekey", "privkey", "accesskey", "secretkey", "sessionkey", "authkey",
    "signingkey", "encryptionkey", "sshkey", "pgpkey", "gpgkey", "authorization", "auth", "bearer", "otp",
    "totp", "jwt", "jwts", "pem", "dsn", "databaseurl", "dburl", "connectionstring", "connstr",
    "mnemonic", "seedphrase", "recoverycode", "recoverycodes", "pat", "hmac", "signature", "salt",
    "clientsecret", "refreshtoken", "accesstoken", "idtoken", "sessiontoken", "sessionid", "csrf", "xsrf",
    "keystore", "keyfile", "certificate", "cert", "passwordhash",
})
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def attr_key_rule(key: str) -> str | None:
    """The rule an attrs key breaks by what it names, for a text value: `content_field`
    for free text (`is_content_key`), `secret_field` for a credential, else None.
    A content key names text by its last word, its last two words or a qualifier
    after one; a credential key by any of its words (`auth_token`, `passwd_file`,
    `private_key_pem`). Numbers and booleans are never dropped for their key's name."""
    if len(key) <= MAX_STRING_LENGTH:
        return _attr_key_rule(key)
    return _attr_key_rule.__wrapped__(key)


@functools.lru_cache(maxsize=4096)
def _attr_key_rule(key: str) -> str | None:
    words = _key_words(key)
    if _names_one_of(words, _CONTENT_WORDS) or _names_source_code(words):
        return RULE_CONTENT_FIELD
    if _names_a_secret(words):
        return RULE_SECRET_FIELD
    return None


def _names_a_secret(words: list[str]) -> bool:
    """Any word, or two adjacent words joined, names a credential: `private_key_pem`,
    `passwd_file`, `database_url`, `ssh_key`, `tokens` (the rule applies to text values
    only, so `max_tokens = 4096` declared as an int is unaffected)."""
    if "".join(words) in _SECRET_WORDS:
        return True
    return any(w in _SECRET_WORDS for w in words) or \
        any(a + b in _SECRET_WORDS for a, b in zip(words, words[1:], strict=False))


def _key_words(key: str) -> list[str]:
    """Lower-case words of a key in any case or separator style, trailing numbers dropped."""
    words = [w.lower() for w in _CAMEL.findall(unicodedata.normalize("NFKC", key))]
    while words and words[-1].isdigit():
        words.pop()
    return words


def _names_one_of(words: list[str], vocabulary: frozenset[str]) -> bool:
    """The last word, all words, the last two words joined, or a qualifier after one, is in `vocabulary`."""
    if not words:
        return False
    head = words[-1]
    if head in vocabulary or "".join(words) in vocabulary:
        return True
    if len(words) >= 2 and words[-2] + head in vocabulary:
        return True
    return head in _QUALIFIERS and any(w in vocabulary for w in words[:-1])


def _names_source_code(words: list[str]) -> bool:
    """`code` alone is metadata (error_code, exit_code); `source code` and kin are content."""
    return len(words) >= 2 and words[-1] == "code" and words[-2] in _CODE_PREFIXES


def is_content_key(key: str) -> bool:
    """True for keys naming free text, whatever the case or separators:
    `content`, `Source-Code`, `scriptText`, `raw_message`, `line2`, `body_html`.
    A key counts when its last word (trailing numbers ignored) is a content
    word, when its last two words make one (`source code`, `user input`), or
    when it ends in a qualifier after one (`text_value`, `message_raw`).
    Metadata about content (`line_count`, `message_id`, `content_type`) passes."""
    return attr_key_rule(key) == RULE_CONTENT_FIELD
