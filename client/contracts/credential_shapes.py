"""Credentials by shape: a value that looks like a secret is dropped whatever its key.

Two detectors, both run by `privacy.check_string` on every string at both ends:
- known formats: vendor token prefixes (GitHub `ghp_…`, GitLab `glpat-…`, Slack
  `xoxb-…`, AWS `AKIA…`, Google `AIza…`/`ya29.…`, OpenAI/Stripe `sk-…`/`sk_live_…`,
  npm, PyPI, Twilio, SendGrid, our own `bpt_…` keys), JSON Web Tokens, PEM
  headers, and `key=value` credential assignments (`password=…`, `token: …`);
- random keys: a run of 20+ characters of the base64/hex alphabets that mixes
  upper case, lower case and digits (ids the system writes are lower-case hex,
  so they never look like this).
Short human secrets (a 6-letter password) have no shape; the event catalog is
what keeps them from leaving — only declared attributes leave at all.
"""

from __future__ import annotations

import re

RULE_SECRET_VALUE = "secret_value"
MIN_SECRET_LENGTH = 16  # the shortest shape below (`AKIA` + 12..16, `-----BEGIN ` + a word)
RANDOM_RUN = 20

_B = r"(?<![A-Za-z0-9_\-])"  # a token boundary before the prefix
_KNOWN = re.compile(
    "|".join((
        _B + r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}",
        _B + r"github_pat_[A-Za-z0-9_]{20,}",
        _B + r"glpat-[A-Za-z0-9_\-]{20,}",
        _B + r"xox[abposre]-[A-Za-z0-9\-]{10,}",
        _B + r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|A3T[A-Z0-9])[A-Z0-9]{12,}",
        _B + r"AIza[0-9A-Za-z_\-]{30,}",
        _B + r"ya29\.[0-9A-Za-z_\-]{20,}",
        _B + r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}",
        _B + r"(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
        _B + r"npm_[A-Za-z0-9]{30,}",
        _B + r"pypi-[A-Za-z0-9_\-]{40,}",
        _B + r"SK[0-9a-fA-F]{32}",
        _B + r"SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
        _B + r"bpt_[0-9a-f]{8}_[A-Za-z0-9_\-]{16,}",
        _B + r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",  # JWT: base64url JSON header
        r"-----BEGIN[ A-Z0-9]*(?:KEY|CERTIFICATE|SIGNATURE|MESSAGE)",
        r"(?i:(?<![a-z])(?:password|passwd|passphrase|pwd|secret|token|api[_\-]?key|access[_\-]?key"
        r"|private[_\-]?key|auth)\s*[:=]\s*\S{4,})",
    ))
)
_RANDOM_CANDIDATE = re.compile(rf"[A-Za-z0-9+/=_\-]{{{RANDOM_RUN},}}")


def secret_value_rule(text: str) -> str | None:
    """`secret_value` when `text` holds a credential by shape (see the module docstring), else None."""
    if len(text) < MIN_SECRET_LENGTH:
        return None
    if _KNOWN.search(text) is not None:
        return RULE_SECRET_VALUE
    for match in _RANDOM_CANDIDATE.finditer(text):
        if _looks_random(match.group()):
            return RULE_SECRET_VALUE
    return None


def _looks_random(run: str) -> bool:
    """Upper and lower case mixed with digits inside one run of a key alphabet: two digits or
    more, or one with base64's `+` or `/` (identifier separators `_` and `-` split words)."""
    for word in re.split(r"[_\-]", run):
        if len(word) < RANDOM_RUN or word.lower() == word or word.upper() == word:
            continue  # one case only (hex ids, hashes, numbers, words): not random by this test
        digits = sum(c.isdigit() for c in word)
        if digits >= 2 or (digits and ("/" in word or "+" in word)):
            return True
    return False
