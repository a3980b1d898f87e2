"""The hostile corpus of the privacy acceptance suite (test_privacy_corpus.py).

SENSITIVE holds realistic values that identify a user, their files, their
machines or their secrets — the things the product promises never leave the
machine — grouped by class. Every value is fake (made-up names, documentation
address ranges, random tokens of the right shape) but shaped like the real
thing, including the disguises an adversarial caller (or a careless one) uses:
percent-encoding, fullwidth and look-alike characters, HTML entities,
zero-width characters, ` at ` for `@`.

Rules the corpus keeps (checked by `test_the_corpus_is_what_it_claims`): at
least 150 sensitive values, each distinct from every other one after folding,
none a substring of anything a clean package or a server answer holds (so a
hit is a leak, not a coincidence), none shorter than 6 characters.

BENIGN holds values that the bundled catalog declares (enum values, ints and
floats in range, bools, versions, strings matching a declared pattern,
statuses, error codes matching `code_pattern`, public exception types): each
must come out of the export exactly as it went in. Only events that never
expire are used, so the suite holds on any date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --- access tokens by shape --------------------------------------------------------------------
# Vendor prefixes the rules know, shapes they may not (Vault, Discord, Stripe webhook secrets, an
# AWS secret key with no prefix), our own `bpt_` API keys, JWTs, PEM blocks, and human passwords
# with no shape at all (only the catalog keeps those in).
TOKENS = [
    "ghp_4ic5ltrtfI5xi2fOIB6CSVRjVBtlJrJCHiPz",  # GitHub classic personal access token
    "gho_czWHDcCa64KCktsYKqr3v6qAeh2BlhVtWfMu",  # GitHub OAuth token
    "ghs_5ksVsXMDN5ceK0bFAhfPaoLzFZioAyNM6k9F",  # GitHub app installation token
    "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",
    "glpat-1jkugFLLLNn0J3ZsMGRa",  # GitLab personal access token
    "xoxb-201768419482-8564159704791-Fg4q1DR04PmEsGmT65R8SrDE",  # Slack bot token
    "xoxp-610134155700-987885981565-7091961361334-4e50b2e5575e3ce25fe57b5dffbc2bb7",  # Slack user token
    "https://hooks.slack.com/services/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",  # Slack webhook
    "AKIAHALEZDEILA6T7SHO",  # AWS access key id
    "ASIAUQJVZUMYZSUJWSYR",  # AWS temporary access key id
    "piF/BaxmtQSWYgLLwhVjTwQ/2AzeKjxuVPQD4xy/",  # AWS secret access key (no prefix)
    "AIzaTymlGCscHFaveEA_52B43cirmXbsG8DEmcQ",  # Google API key
    "ya29.a0BvvsTBQLY1PtSFu5lbb7IGb2ztzHC_fCmc6sFtfqCIQpghLfl41qrccyCKv_",  # Google OAuth access token
    "sk_live_514TF5kMn4CFT3Z2MlLL2pdhAqMRifZNTdafCsLI3oRRwpiOdTNNQHO538Fb5b",  # Stripe secret key
    "rk_live_518xF7CNWik9Z4Lc7bgjpzdZRE7OL4CCwPYn8qxmLM",  # Stripe restricted key
    "whsec_9eZ3pc7k8swMGPweg92Wxq6JWHFfZ4mJ",  # Stripe webhook signing secret
    "sk-proj-snpDrDU1Se4JUhaexBtpubYNedmw1lebqrcn3xHHRsXBIAjE",  # OpenAI project key
    "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",  # OpenAI legacy key
    "sk-ant-api03-8EEubLLiyCkpT1kmarWbPvWFtK4z5deBVP3otsJ0igpGRi_eA5w2ZRo-unQdaC2QJ6Hu17dQdrvA8tn9tbBFkdAA",
    "npm_OGUw3T483oj6rMfP5qtWkhZtH4C64dzBaIrl",  # npm automation token
    "pypi-AgEIcHlwaS5vcmcCJ0ctLME4FhfhQBTtdGGaflJXnQTNyIlfYo-n5GLa2hXhMbO7Q1a",  # PyPI API token
    "bpt_f8cda44b_FupW3XYw4FZoSyAtAS0iDuwu2pwPD7LWTbjnwlIQKUJ",  # our own backend API key
    "SKb9342efe6fede0ff170318e34c89edaf",  # Twilio API key
    "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",  # SendGrid API key
    "hvs.CAESIL6jm8TMGiTjedYeulb-cTgfi7dJz54T4RmI0o-WG",  # HashiCorp Vault service token
    "Vmg50BtISw5TLvqz01VPRcJt.Yu9h0H.tQ1VLaRwC-OV6rqtcGCl3uQeyK5VSejBqKLVka",  # Discord bot token
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUgRG9lIiwiaWF0"
    "IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",  # JWT
    "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbm5hIn0.c2lnbmF0dXJlLWJ5dGVz",  # JWT in a header
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n"
    "7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh\n"
    "-----END RSA PRIVATE KEY-----",  # PEM private key
    "-----BEGIN OPENSSH PRIVATE KEY-----",  # PEM header alone
    "8jZUpsHRnczKbio6HHFnfIW7JC6ieGFwo5WeTQK6x46BtT+uPB6H6YW1AkeWrQwm",  # a random base64 secret
    "password=Tr0ub4dor&3",  # a credential assignment
    "DB_PASSWORD: hunter2-Summer2024",  # an .env line
    "Basic YWxpY2U6czNjcjN0LXBhc3N3b3Jk",  # HTTP basic auth (alice:s3cr3t-password)
    "Tr0ub4dor&3",  # a human password: no shape at all
    "correct horse battery staple",  # a passphrase
]

# --- hostnames and IP addresses --------------------------------------------------------------
# Internal names, cloud-internal names, home-network names, IPv4 (private, CGNAT, with a port),
# IPv6 (link-local, documentation, unique-local, IPv4-mapped, bracketed with a port).
HOSTS = [
    "db-prod-03.internal.acme-corp.com",
    "jenkins.corp.initech.local",
    "build-agent-17.lan",
    "10.20.30.44",
    "192.168.178.23",
    "172.31.7.201",
    "100.64.12.9",
    "10.8.0.1:51820",
    "fe80::1ff:fe23:4567:890a",
    "2001:db8:85a3::8a2e:370:7334",
    "fd12:3456:789a:1::42",
    "::ffff:10.1.2.3",
    "[2001:db8::1]:8443",
    "WIN-7QK2J3LD0PA",
    "DESKTOP-4F2K9QL",
    "MacBook-Pro-de-Camille.local",
    "camilles-imac.fritz.box",
    "gitlab.intra.studio-nebula.fr",
    "ip-10-0-3-17.eu-west-1.compute.internal",
    "mongo-rs0-2.mongo.svc.cluster.local",
    "nas-wohnzimmer",
    "raspberrypi-garage",
]

# --- bare file names -------------------------------------------------------------------------
# No separator at all, so no path rule can see them; the name alone says what the user works on.
FILES = [
    "thesis_draft.docx",
    "IMG_0042.HEIC",
    "Lebenslauf_Anna_Schmidt.pdf",
    "tax_return_2024.xlsx",
    "divorce_settlement_v3.pdf",
    "passport_scan.jpg",
    "chapter7_ending_B.rpy",
    "love_letter_to_mira.txt",
    "Screenshot 2026-11-02 at 21.14.07.png",
    "medical_results_march.pdf",
    "salaries_Q3_confidential.csv",
    "wallet.dat",
    ".env.production",
    "MyGame_v2_FINAL_final.zip",
    "Pitch Deck – Nebula Studios.key",
    "dr_okafor_referral.pdf",
    "DSC_1187.NEF",
]

# --- branch names with people's names -----------------------------------------------------------
BRANCHES = [
    "feature/anna-kowalski-romance-route",
    "fix/jdoe-crash-on-save",
    "wip/priya.raman/dating-sim",
    "hotfix/marco-rossi-steam-build",
    "users/tkimura/experiment",
    "camille/refactor-dialogue",
    "bugfix/OLIVER-SMITH-1234",
    "release/for-moms-birthday",
    "sven_lindqvist-playtest",
    "dev/ahmed.benali/ending-c",
    "nathalie-dupont-translation-fr",
    "yuki-tanaka-hotfix",
]

# --- one-line personal notes -------------------------------------------------------------------
NOTES = [
    "Call mom about the biopsy results on Friday",
    "remember to pay Sarah back 40 euros",
    "I think I'm burning out, need a break",
    "meeting with lawyer re custody Tuesday 3pm",
    "Ending B is about my dad's death",
    "don't tell Tom about the surprise party",
    "pick up Lena from daycare at 16:30",
    "my therapist says to write more",
    "Rent is late again, talk to landlord Mr. Haddad",
    "Kiss scene with Yuki in chapter 4 — rewrite",
    "Diagnosed with ADHD last week",
    "Voting for the Green party this year",
    "Allergic to penicillin (note for travel)",
    "Interview at Ubisoft on Monday, keep it secret",
]

# --- SQL snippets ------------------------------------------------------------------------------
SQL = [
    "SELECT * FROM users WHERE email = 'anna.kowalski@example.org'",
    "DELETE FROM orders WHERE customer_id = 48213;",
    "UPDATE accounts SET balance = 1200 WHERE iban = 'DE89370400440532013000'",
    "INSERT INTO patients (name, dob) VALUES ('Mira Okafor', '1990-04-12')",
    "DROP TABLE IF EXISTS payroll_2026; --",
    "SELECT ssn, salary FROM employees WHERE last_name = 'Haddad'",
    "' OR '1'='1' --",
    "SELECT pg_sleep(10); SELECT current_user;",
    "GRANT ALL PRIVILEGES ON crm.* TO 'svc_backup'@'10.20.30.45'",
    "COPY (SELECT * FROM customers) TO '/tmp/customers.csv'",
]

# --- user names ----------------------------------------------------------------------------------
USERNAMES = [
    "jmartinez",
    "anna.kowalski",
    "priya_raman",
    "tkimura",
    "olivier.dubois",
    "ahmed-benali",
    "CORP\\jsmith",
    "svc_backup",
    "s.lindqvist",
    "mira_okafor91",
    "xX_DragonSlayer_Xx",
    "root@web-01",
    "nathalie.dupont",
    "kowalskia",
]

# --- e-mail addresses, plain and disguised ------------------------------------------------------
EMAILS = [
    "a.kowalska@example.org",
    "j.martinez+steam@gmail.com",
    "priya%40raman.dev",  # percent-encoded @
    "tkimura＠studio-nebula.jp",  # fullwidth @
    "olivier.dubois&#64;orange.fr",  # HTML entity
    "nathalie.dupont&#x40;free.fr",  # hex HTML entity
    "ahmed.benali%2540outlook.com",  # encoded twice
    "j%2Emartinez%40acme%2Dcorp%2Ecom",  # every separator encoded
    "mira dot okafor at proton dot me",  # spelled out
    "sven.lindqvist at posteo.de",
    "camille(at)laposte.net",
    "contact [at] nebula-studios.com",
    "mailto:yuki.tanaka@icloud.com",
    "Lena Fischer <lena.fischer@web.de>",
    "marco.rossi@lіbero.it",  # Cyrillic і in the domain
    "\u200bo.smith@hey.com",  # a zero-width space in front
    "priya.raman\uff0edev\uff20gmail\uff0ecom",  # fullwidth dots and @
]

# --- paths: look-alike characters, percent-encoding, variables ----------------------------------
PATHS = [
    "/home/anna/Documents/thesis.docx",
    "C:\\Users\\jmartinez\\Desktop\\game",
    "~/Projects/secret-vn/game/script.rpy",
    "\\\\nas-wohnzimmer\\share\\photos",
    "file:///Users/camille/Library/Mobile%20Documents",
    "%2Fhome%2Fpriya%2F.ssh%2Fid_rsa",
    "%252Fhome%252Fpriya%252Fnotes",
    "∕home∕tkimura∕diary.txt",  # U+2215 division slash
    "／Users／mira／taxes.pdf",  # fullwidth solidus
    "C∶\\Users\\sven\\game",  # U+2236 ratio as the drive colon
    "～/Dropbox/private",  # fullwidth tilde
    "/home/ahmed/\u200bjournal.md",  # zero-width space in the name
    "..%2F..%2Fetc%2Fpasswd",
    "%u002Fhome%u002Fnathalie%u002Fcv.pdf",  # IIS-style %u escapes
    "/Users/yuki/Library/Application Support/Code/User",
    "game/chapters/ending_for_lena.rpy",
    "$HOME/.aws/credentials",
    "%USERPROFILE%\\AppData\\Roaming\\branchpy",
    "smb://nas.local/famille/photos",
]

# --- customer and project names -------------------------------------------------------------------
CUSTOMERS = [
    "Acme Corp renewal",
    "Project Nightingale",
    "Initech TPS migration",
    "Hooli-XYZ pilot",
    "Nebula Studios - Heartstrings",
    "Globex Corporation",
    "Umbrella Health (pilot)",
    "Contoso Pharma NDA",
    "Stark Industries bid",
    "Wayne Enterprises Q4",
    "Soylent Foods audit",
]

# --- phone numbers ---------------------------------------------------------------------------------
PHONES = [
    "+1 (415) 555-0132",
    "+33 6 12 34 56 78",
    "+44 20 7946 0958",
    "+49 30 901820-77",
    "415.555.0132",
    "06 12 34 56 78",
    "+81 90-1234-5678",
    "(212) 555-0199",
    "+1-800-555-0175",
    "+91 98765 43210",
]

# --- other personal identifiers -----------------------------------------------------------------
IDENTIFIERS = [
    "DE89 3704 0044 0532 0130 00",  # IBAN
    "4111 1111 1111 1111",  # card number
    "078-05-1120",  # US social security number
    "AB1234567",  # passport number
    "1 85 05 78 006 084 36",  # French social security number
]

SENSITIVE_CLASSES: dict[str, list[str]] = {
    "token": TOKENS, "host": HOSTS, "file": FILES, "branch": BRANCHES, "note": NOTES, "sql": SQL,
    "user": USERNAMES, "email": EMAILS, "path": PATHS, "customer": CUSTOMERS, "phone": PHONES,
    "ident": IDENTIFIERS,
}


@dataclass(frozen=True)
class Sensitive:
    id: str  # "<class>-<nn>": how tests and reports name it (never the value itself)
    cls: str
    value: str


def sensitive_values() -> list[Sensitive]:
    return [Sensitive(f"{cls}-{i:02d}", cls, value)
            for cls, values in SENSITIVE_CLASSES.items() for i, value in enumerate(values)]


# --- benign values the bundled catalog declares ------------------------------------------------------
@dataclass(frozen=True)
class Benign:
    """A declared value on a declared event: `field` is an attr key, or `status`,
    `error_code` or `error_type` (the error's type: it comes out in `errors[]`)."""

    category: str
    name: str
    field: str
    value: Any

    @property
    def id(self) -> str:
        return f"{self.name}.{self.field}={self.value!r}"


def _attrs(category: str, name: str, key: str, *values: Any) -> list[Benign]:
    return [Benign(category, name, key, v) for v in values]


BENIGN: list[Benign] = [
    *_attrs("command", "analyze", "files", 0, 1, 120, 10_000_000),
    *_attrs("command", "analyze", "files_scanned", 57),
    *_attrs("command", "analyze", "mode", "fast", "full", "incremental"),
    *_attrs("command", "analyze", "flag_json", True, False),
    *_attrs("command", "analyze", "engine", "renpy-8.2", "renpy-7.4.11", "renpy-8"),
    *_attrs("command", "analyze", "cached", True),
    *_attrs("command", "analyze", "workers", 1, 4, 256),
    *_attrs("command", "analyze", "findings", 0, 3),
    *_attrs("command", "lint", "rules", 42),
    *_attrs("command", "lint", "fix", True),
    *_attrs("command", "build", "target", "pc", "mac", "linux", "android", "web"),
    *_attrs("command", "graph", "nodes", 250),
    *_attrs("command", "graph", "layout", "dagre", "force", "tree"),
    *_attrs("command", "export", "format", "json", "csv", "html", "markdown"),
    *_attrs("command", "export.flow", "format", "png", "svg"),
    *_attrs("command", "format", "changed", 12),
    *_attrs("command", "run.tests", "tests", 42),
    *_attrs("command", "run.tests", "failed", 0),
    *_attrs("command", "search", "results", 9),
    *_attrs("command", "search", "regex", True),
    *_attrs("command", "search", "scope", "file", "project", "selection"),
    *_attrs("command", "doctor", "engine_version", "8.2.1", "v2.0.0-rc.1", "7.4.11", "3.13.0b2"),
    *_attrs("command", "doctor", "python_ok", True),
    *_attrs("feature", "graph.open", "panel", "flow", "graph", "outline", "control-center"),
    *_attrs("feature", "flow.zoom", "level", 0.05, 1.5, 20.0),
    *_attrs("feature", "quickfix.apply", "rule", "BP-R101", "BP-R2040"),
    *_attrs("feature", "outline.toggle", "visible", False),
    *_attrs("performance", "parse", "bytes", 123_456_789),
    *_attrs("performance", "index.build", "symbols", 50_000),
    *_attrs("error", "load", "stage", "read", "parse", "resolve"),
    *_attrs("error", "crash", "fatal", True),
    *_attrs("session", "start", "client", "cli", "vscode"),
    *_attrs("session", "end", "commands", 14),
    *_attrs("system", "extension.activate", "vscode", "1.95.3"),
    *_attrs("system", "extension.activate", "extension", "0.14.2"),
    *_attrs("system", "daemon.start", "mode", "manual", "auto"),
    *_attrs("command", "analyze", "status", "ok", "error", "cancelled", "timeout", "skipped"),
    *_attrs("command", "lint", "error_code", "BP-E1042", "BP-E0001", "BP-E9999"),
    *_attrs("command", "check", "error_type", "ValueError", "json.JSONDecodeError", "renpy.ScriptError",
            "FileNotFoundError"),
]
