"""Basic authentication: htpasswd loading/verification and public-path exclusions.

Room: auth (PURE after load). `Htpasswd.load` reads the file once; `check_header` verifies an
Authorization header value with no file access at all. `Htpasswd.refresh` is the only I/O after
load: one `stat`, and a re-read when the file changed. The server calls it from its
once-a-second sweep (never per request), so a removed user or a changed password takes effect
within about a second without a reload (the reference re-read only after some login failed,
so a cached user kept access until then).

Invariants:
- supported formats: `$apr1$`, `$1$` (md5-crypt, own code), `{SHA}`, `{SSHA}`, bcrypt
  `$2a$/$2b$/$2y$` (bcrypt package; >72-byte passwords fail instead of raising), `$5$`/`$6$`
  (SHA-crypt, own code per the published spec), anything else compared verbatim as plain text;
- all secret comparisons use `hmac.compare_digest`;
- successful verifications are cached by a SHA-256 of the header value (never the password
  itself) together with the stored hash they matched, bounded; a re-read keeps only entries
  the new file still backs with the same hash (removed user or changed password: dropped);
- a changed file that cannot be read (missing, unreadable, mid-replacement) or has no
  `user:hash` line among its content keeps the last good users, with one warning per change;
  lines that are not `user:hash` are skipped with a warning naming their numbers (never their
  text, which could be a password);
- usernames from the request are stripped of surrounding whitespace before lookup;
- nothing here logs a password, a hash or an Authorization value.

Must not touch: sockets, asyncio, clocks, os.environ.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from navigator.config.runtime import AuthSettings

log = logging.getLogger("navigator.auth")

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CACHE_LIMIT = 1024


# --- hash formats ---------------------------------------------------------------------------
def _to64(value: int, count: int) -> str:
    out = []
    for _ in range(count):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return "".join(out)


def md5_crypt(password: bytes, salt: bytes, magic: bytes = b"$1$") -> str:
    """FreeBSD md5-crypt (`$1$`) and Apache's variant (`$apr1$`), which differ only in magic."""
    salt = salt[:8]
    alternate = hashlib.md5(password + salt + password).digest()
    ctx = bytearray(password + magic + salt)
    for remaining in range(len(password), 0, -16):
        ctx += alternate[: min(16, remaining)]
    i = len(password)
    while i:
        ctx += b"\x00" if i & 1 else password[:1]
        i >>= 1
    final = hashlib.md5(ctx).digest()
    for i in range(1000):
        step = bytearray(password if i & 1 else final)
        if i % 3:
            step += salt
        if i % 7:
            step += password
        step += final if i & 1 else password
        final = hashlib.md5(step).digest()
    encoded = "".join(
        _to64((final[a] << 16) | (final[b] << 8) | final[c], 4)
        for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))
    ) + _to64(final[11], 2)
    return f"{magic.decode()}{salt.decode('latin-1')}${encoded}"


_SHA256_ORDER = ((0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14), (15, 25, 5),
                 (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29))
_SHA512_ORDER = ((0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
                 (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
                 (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16),
                 (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41))
_ROUNDS_RE = re.compile(r"rounds=(\d+)$")


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _sha512(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()


def _repeat_to(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def sha_crypt(password: bytes, setting: str) -> str | None:
    """SHA-crypt (`$5$` SHA-256, `$6$` SHA-512), Ulrich Drepper's specification.

    `setting` is the stored hash (or just `$5$[rounds=N$]salt`); returns the full hash string
    to compare against, or None when the setting is malformed.
    """
    parts = setting.split("$")
    if len(parts) < 3 or parts[1] not in ("5", "6"):
        return None
    ident = parts[1]
    hash_fn = _sha256 if ident == "5" else _sha512
    rounds, custom = 5000, False
    salt_index = 2
    match = _ROUNDS_RE.match(parts[2])
    if match:
        if len(parts) < 4:
            return None
        rounds, custom = max(1000, min(int(match.group(1)), 999_999_999)), True
        salt_index = 3
    salt = parts[salt_index][:16].encode("latin-1")
    size = 32 if ident == "5" else 64

    b = hash_fn(password + salt + password)
    a_ctx = bytearray(password + salt)
    a_ctx += _repeat_to(b, len(password))
    n = len(password)
    while n:
        a_ctx += b if n & 1 else password
        n >>= 1
    a = hash_fn(bytes(a_ctx))
    p_seq = _repeat_to(hash_fn(password * len(password)), len(password)) if password else b""
    s_seq = _repeat_to(hash_fn(salt * (16 + a[0])), len(salt)) if salt else b""
    c = a
    for i in range(rounds):
        step = bytearray(p_seq if i & 1 else c)
        if i % 3:
            step += s_seq
        if i % 7:
            step += p_seq
        step += c if i & 1 else p_seq
        c = hash_fn(bytes(step))
    order = _SHA256_ORDER if size == 32 else _SHA512_ORDER
    encoded = "".join(_to64((c[x] << 16) | (c[y] << 8) | c[z], 4) for x, y, z in order)
    encoded += _to64((c[31] << 8) | c[30], 3) if size == 32 else _to64(c[63], 2)
    prefix = f"${ident}$" + (f"rounds={rounds}$" if custom else "")
    return f"{prefix}{salt.decode('latin-1')}${encoded}"


def _sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def verify_hash(stored: str, password: str) -> bool:
    """Does `password` match one htpasswd hash (any supported format)?"""
    pw = password.encode("utf-8")
    if stored.startswith("$apr1$") or stored.startswith("$1$"):
        magic = "$apr1$" if stored.startswith("$apr1$") else "$1$"
        salt = stored[len(magic):].split("$", 1)[0]
        computed = md5_crypt(pw, salt.encode("latin-1"), magic.encode())
        return hmac.compare_digest(computed.encode(), stored.encode())
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            return bcrypt.checkpw(pw, stored.encode("latin-1"))
        except ValueError:  # >72-byte password or malformed hash: a failed login, not a crash
            return False
    if stored.startswith(("$5$", "$6$")):
        computed_sha = sha_crypt(pw, stored)
        return computed_sha is not None and hmac.compare_digest(computed_sha.encode(),
                                                                 stored.encode())
    if stored.startswith("{SHA}"):
        return hmac.compare_digest(_sha1_b64(pw).encode(), stored[5:].encode())
    if stored.startswith("{SSHA}"):
        try:
            raw = base64.b64decode(stored[6:], validate=True)
        except (binascii.Error, ValueError):
            return False
        if len(raw) <= 20:
            return False
        digest, ssha_salt = raw[:20], raw[20:]
        return hmac.compare_digest(hashlib.sha1(pw + ssha_salt).digest(), digest)
    return hmac.compare_digest(pw, stored.encode("utf-8"))


# --- the file ---------------------------------------------------------------------------
def read_entries(text: str) -> tuple[dict[str, str], tuple[int, ...]]:
    """(`user:hash` entries, numbers of content lines that are not `user:hash`).

    Blank lines and `#` comments are skipped; the first entry for a user wins.
    """
    entries: dict[str, str] = {}
    malformed: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        user, colon, hashed = stripped.partition(":")
        if not colon or not user.strip():
            malformed.append(number)
            continue
        entries.setdefault(user.strip(), hashed.strip())
    return entries, tuple(malformed)


def parse_htpasswd(text: str) -> dict[str, str]:
    """`user:hash` lines; blank lines, `#` comments and malformed lines skipped."""
    return read_entries(text)[0]


def parse_basic(authorization: str) -> tuple[str, str] | None:
    """(username stripped, password) from a `Basic …` header value, or None."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if ":" not in text:
        return None
    user, _, password = text.partition(":")
    return user.strip(), password


FileStamp = tuple[int, int, int, int, int]


def _file_stamp(st: os.stat_result) -> FileStamp:
    """What tells a changed file apart: an in-place write moves mtime/ctime/size, a rename
    over it changes the inode."""
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)


def _warn_malformed(path: Path, malformed: tuple[int, ...]) -> None:
    if malformed:
        shown = ", ".join(map(str, malformed[:10])) + (", ..." if len(malformed) > 10 else "")
        log.warning("htpasswd file %s: line %s not user:hash, skipped", path, shown)


class Htpasswd:
    """The users of one htpasswd file plus a cache of successful header verifications."""

    __slots__ = ("_cache", "_entries", "_problem", "_stamp", "path")

    def __init__(self, entries: dict[str, str], path: Path | None = None,
                 stamp: FileStamp | None = None) -> None:
        self.path = path
        self._entries = entries
        self._stamp = stamp
        self._problem = ""  # why the file on disk is not in use ("" = it is)
        # header digest -> (user, the stored hash the password matched)
        self._cache: dict[bytes, tuple[str, str]] = {}

    @classmethod
    def load(cls, path: Path | str) -> Htpasswd:
        """Read and parse the file; raises OSError when it cannot be read."""
        file = Path(path)
        with open(file, encoding="utf-8", errors="replace") as handle:
            st = os.fstat(handle.fileno())
            text = handle.read()
        entries, malformed = read_entries(text)
        _warn_malformed(file, malformed)
        return cls(entries, file, _file_stamp(st))

    @property
    def users(self) -> frozenset[str]:
        return frozenset(self._entries)

    def verify(self, user: str, password: str) -> bool:
        """Check one username/password against the loaded entries (no file access)."""
        stored = self._entries.get(user.strip())
        return stored is not None and verify_hash(stored, password)

    def check_header(self, authorization: str | None) -> str | None:
        """The authenticated username for an Authorization header value, or None."""
        if not authorization:
            return None
        key = hashlib.sha256(authorization.encode("utf-8", "surrogateescape")).digest()
        cached = self._cache.get(key)
        if cached is not None:
            return cached[0]
        credentials = parse_basic(authorization)
        if credentials is None:
            return None
        user, password = credentials
        stored = self._entries.get(user)
        if stored is None or not verify_hash(stored, password):
            return None
        if len(self._cache) >= CACHE_LIMIT:
            del self._cache[next(iter(self._cache))]
        self._cache[key] = (user, stored)
        return user

    def refresh(self) -> bool:
        """Re-read the file if its `stat` changed; True when a new user table was adopted.

        Called about once a second by the server's sweep, never per request.
        """
        if self.path is None:
            return False
        try:
            stamp = _file_stamp(os.stat(self.path))
            if stamp == self._stamp:
                return False
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                stamp = _file_stamp(os.fstat(handle.fileno()))
                text = handle.read()
        except OSError as exc:
            self._keep_previous(f"cannot be read ({exc.strerror or exc})")
            return False
        self._stamp = stamp  # a rejected version is not re-parsed until the file changes again
        entries, malformed = read_entries(text)
        if not entries and malformed:
            self._keep_previous("has no user:hash line")
            return False
        _warn_malformed(self.path, malformed)
        self._adopt(entries)
        return True

    def _adopt(self, entries: dict[str, str]) -> None:
        """New users; cached logins survive only while the file still has the same hash."""
        self._entries = entries
        self._cache = {key: (user, stored) for key, (user, stored) in self._cache.items()
                       if entries.get(user) == stored}
        self._problem = ""
        log.info("htpasswd file %s changed: re-read (%d users)", self.path, len(entries))

    def _keep_previous(self, problem: str) -> None:
        if problem != self._problem:
            log.warning("htpasswd file %s %s: keeping the previous %d users", self.path,
                        problem, len(self._entries))
        self._problem = problem


# --- public paths ---------------------------------------------------------------------------
def glob_to_regex(pattern: str) -> str | None:
    """Go `filepath.Match` syntax as a Python regex (anchored); None when malformed.

    `*` and `?` never cross `/`; neither does a negated class (stricter than Go, on purpose).
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            i += 1
            if i >= n:
                return None
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            i += 1
            negated = i < n and pattern[i] == "^"
            if negated:
                i += 1
            items: list[str] = []
            while True:
                if i >= n:
                    return None
                if pattern[i] == "]" and items:
                    break
                lo, i = _class_char(pattern, i)
                if lo is None:
                    return None
                if i < n and pattern[i] == "-":
                    hi, i = _class_char(pattern, i + 1)
                    if hi is None or hi < lo:
                        return None
                    items.append(f"{re.escape(lo)}-{re.escape(hi)}")
                else:
                    items.append(re.escape(lo))
            out.append("[" + ("^/" if negated else "") + "".join(items) + "]")
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _class_char(pattern: str, i: int) -> tuple[str | None, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        return None, i
    if pattern[i] == "\\":
        if i + 1 >= len(pattern):
            return None, i
        return pattern[i + 1], i + 2
    return pattern[i], i + 1


@dataclass(frozen=True, slots=True)
class PublicPaths:
    """`public_paths` + `auth_patterns: off`, compiled once per config (section 5.2)."""

    everything: bool
    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    globs: re.Pattern[str] | None = None
    off_patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def build(cls, settings: AuthSettings) -> PublicPaths:
        if not settings.enabled:
            return cls(everything=True)
        exact: set[str] = set()
        prefixes: list[str] = []
        suffixes: list[str] = []
        globs: list[str] = []
        for entry in settings.public_paths:
            if entry.startswith("*"):
                suffixes.append(entry[1:])
            elif "*" in entry:
                translated = glob_to_regex(entry)
                if translated is None:
                    log.warning("auth.public_paths: malformed glob %r never matches", entry)
                else:
                    globs.append(translated)
            elif entry.endswith("/"):
                prefixes.append(entry)
            else:
                exact.add(entry)
        return cls(
            everything=False, exact=frozenset(exact), prefixes=tuple(prefixes),
            suffixes=tuple(suffixes),
            globs=re.compile("|".join(f"(?:{g})" for g in globs)) if globs else None,
            off_patterns=tuple(p.pattern for p in settings.auth_patterns if p.action == "off"),
        )

    def matches(self, path: str) -> bool:
        """Whether the decided (normalised) path is public.

        A path holding `;`, `#` or `?` (raw `;`, or decoded from `%3B`, `%23`, `%3F`) is never
        public: a tenant that treats them as delimiters (path parameters, a re-parsed URL)
        would act on a shorter path than the one matched, e.g. `/admin;x.css` against `*.css`.
        """
        if self.everything:
            return True
        if ";" in path or "#" in path or "?" in path:
            return False
        if path in self.exact:
            return True
        if (self.suffixes and path.endswith(self.suffixes)) or (
                self.prefixes and path.startswith(self.prefixes)):
            return True
        if self.globs is not None and self.globs.fullmatch(path) is not None:
            return True
        return any(p.search(path) is not None for p in self.off_patterns)


_PROBE = "/navigator-check-probe"
_PROBES = ("/", _PROBE, f"{_PROBE}/a/b", f"{_PROBE}/a.json", f"{_PROBE}/a.css")


def everything_public(settings: AuthSettings, public: PublicPaths,
                      tenant_paths: Sequence[str] = ()) -> tuple[str, ...]:
    """Warnings (for `navigator check` and the start-up log) when auth is on but
    `public_paths` / `auth_patterns` leave no path protected.

    "Every path" is judged on probe paths nobody makes public on purpose: `/`, made-up
    paths of several depths and extensions, and a made-up path inside each tenant. A
    `public_paths` entry covers them all only as the prefix `/` (an entry ending in `/` is
    a prefix, so `/` is every path, not the landing page) or the suffix `*`; globs never
    cross `/`, exact entries are one path. A regex is judged by searching the probes."""
    if not settings.enabled:
        return ()
    probes = (*_PROBES, *tenant_paths, *(f"{path}{_PROBE[1:]}/a" for path in tenant_paths))
    found = []
    for index, entry in enumerate(settings.public_paths):
        if entry == "/":
            found.append(f"auth.public_paths[{index}]: '/' is a prefix of every path, so auth "
                         "protects nothing; to make only the landing page public use "
                         "auth_patterns: [{pattern: '^/$', action: 'off'}]")
        elif entry == "*":
            found.append(f"auth.public_paths[{index}]: '*' matches every path, so auth "
                         "protects nothing")
    for index, item in enumerate(settings.auth_patterns):
        if item.action == "off" and all(item.pattern.search(path) for path in probes):
            found.append(f"auth.auth_patterns[{index}]: {item.pattern.pattern!r} with action "
                         "'off' matches every path, so auth protects nothing")
    if not found and all(public.matches(path) for path in probes):
        found.append("auth: public_paths and auth_patterns together make every path public, "
                     "so auth protects nothing")
    return tuple(found)


def is_public(path: str, settings: AuthSettings) -> bool:
    """Convenience for one-off checks; routing keeps a compiled `PublicPaths`."""
    return PublicPaths.build(settings).matches(path)


def www_authenticate(realm: str) -> str:
    escaped = realm.replace("\\", "\\\\").replace('"', '\\"')
    return f'Basic realm="{escaped}"'
