"""Unit tests for navigator.web.auth: htpasswd formats, header checks, public paths;
snapshot errors."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import bcrypt
import pytest

from navigator.config.runtime import AuthPattern, AuthSettings, Config, ListenAddress, Maintenance
from navigator.web.auth import (
    Htpasswd,
    PublicPaths,
    everything_public,
    glob_to_regex,
    is_public,
    md5_crypt,
    parse_basic,
    parse_htpasswd,
    sha_crypt,
    verify_hash,
    www_authenticate,
)
from navigator.web.snapshot import BUILTIN_MAINTENANCE_PAGE, SnapshotError, build_snapshot

OPENSSL = shutil.which("openssl")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def openssl_hash(flag: str, password: str, salt: str) -> str:
    if OPENSSL is None:
        pytest.skip("openssl not installed")
    out = subprocess.run([OPENSSL, "passwd", flag, "-salt", salt, password], check=True,
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


# --- hash formats ----------------------------------------------------------------------------
@pytest.mark.parametrize(("flag", "salt"), [
    ("-apr1", "abcdefgh"), ("-apr1", "x"), ("-1", "ab"), ("-1", "saltsalt"),
    ("-5", "saltsalt"), ("-5", "0123456789abcdef"), ("-6", "saltsalt"), ("-6", "s"),
])
@pytest.mark.parametrize("password", ["secret", "", "pässwörd with spaces", "x" * 100])
def test_crypt_formats_match_openssl(flag: str, salt: str, password: str) -> None:
    stored = openssl_hash(flag, password, salt)
    if stored == "<NULL>":
        pytest.skip("this openssl cannot hash an empty password with SHA-crypt")
    assert verify_hash(stored, password)
    assert not verify_hash(stored, password + "!")


def test_sha_crypt_rounds_parameter() -> None:
    # Published test vectors from Ulrich Drepper's SHA-crypt specification.
    assert sha_crypt(b"Hello world!", "$5$rounds=10000$saltstringsaltstring") == (
        "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA")
    assert sha_crypt(b"Hello world!", "$6$rounds=10000$saltstringsaltstring") == (
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8v"
        "OuZeHBy/YTBmSK6H9qs/y3RnOaw5v.")
    assert sha_crypt(b"x", "$7$salt$") is None


def test_md5_crypt_known_values() -> None:
    assert md5_crypt(b"secret", b"abcdefgh", b"$apr1$") == "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/"
    assert md5_crypt(b"secret", b"ab") == "$1$ab$dslkcXxVH.x8LwW1W/oAB/"


@pytest.mark.parametrize("prefix", [b"$2a$", b"$2b$", b"$2y$"])
def test_bcrypt_variants(prefix: bytes) -> None:
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(4))
    stored = (prefix + hashed[4:]).decode()
    assert verify_hash(stored, "secret")
    assert not verify_hash(stored, "wrong")


def test_bcrypt_long_password_fails_without_crash() -> None:
    stored = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()
    assert not verify_hash(stored, "y" * 100)
    assert not verify_hash("$2b$04$broken", "secret")


def test_sha_and_ssha() -> None:
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"secret").digest()).decode()
    assert verify_hash(sha, "secret")
    assert not verify_hash(sha, "Secret")
    salt = b"\x01\x02\x03\x04"
    ssha = "{SSHA}" + base64.b64encode(hashlib.sha1(b"secret" + salt).digest() + salt).decode()
    assert verify_hash(ssha, "secret")
    assert not verify_hash(ssha, "nope")
    assert not verify_hash("{SSHA}!!!", "secret")
    assert not verify_hash("{SSHA}" + base64.b64encode(b"short").decode(), "secret")


@pytest.mark.parametrize(("stored", "password", "ok"), [
    ("plain", "plain", True),
    ("plain", "plai", False),
    ("plain", "Plain", False),
    ("", "", True),
])
def test_plain_text(stored: str, password: str, ok: bool) -> None:
    assert verify_hash(stored, password) is ok


# --- parsing ---------------------------------------------------------------------------------
def test_parse_htpasswd() -> None:
    text = "# comment\n\nalice:$apr1$x$y\n bob : plain \nbad line\nalice:second\n"
    assert parse_htpasswd(text) == {"alice": "$apr1$x$y", "bob": "plain"}


@pytest.mark.parametrize(("header", "expected"), [
    (basic("alice", "pw"), ("alice", "pw")),
    (basic(" alice ", "p:w:x"), ("alice", "p:w:x")),
    ("basic " + base64.b64encode(b"a:b").decode(), ("a", "b")),
    ("Basic " + base64.b64encode("zoë:pw".encode()).decode(), ("zoë", "pw")),
    ("Basic " + base64.b64encode(b"nocolon").decode(), None),
    ("Basic ***", None),
    ("Bearer abc", None),
    ("", None),
])
def test_parse_basic(header: str, expected: tuple[str, str] | None) -> None:
    assert parse_basic(header) == expected


def test_www_authenticate_escapes_realm() -> None:
    assert www_authenticate('My "Realm"') == 'Basic realm="My \\"Realm\\""'


# --- the file and its cache ------------------------------------------------------------------
@pytest.fixture
def htfile(tmp_path: Path) -> Path:
    file = tmp_path / ".htpasswd"
    file.write_text("alice:" + md5_crypt(b"wonder", b"salt", b"$apr1$") + "\nbob:builder\n")
    return file


def test_check_header(htfile: Path) -> None:
    users = Htpasswd.load(htfile)
    assert users.users == frozenset({"alice", "bob"})
    assert users.check_header(basic("alice", "wonder")) == "alice"
    assert users.check_header(basic(" alice ", "wonder")) == "alice"
    assert users.check_header(basic("alice", "wrong")) is None
    assert users.check_header(basic("carol", "x")) is None
    assert users.check_header(None) is None
    assert users.verify("bob", "builder")


def test_successful_checks_are_cached_by_header(htfile: Path) -> None:
    users = Htpasswd.load(htfile)
    header = basic("alice", "wonder")
    assert users.check_header(header) == "alice"
    users._entries.clear()  # a cache hit never looks at the entries again
    assert users.check_header(header) == "alice"


def test_cache_is_bounded(htfile: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("navigator.web.auth.CACHE_LIMIT", 2)
    users = Htpasswd.load(htfile)
    for header in (basic("bob", "builder"), basic(" bob", "builder"), basic("bob ", "builder")):
        assert users.check_header(header) == "bob"
    assert len(users._cache) == 2


def _touch_later(file: Path) -> None:
    """Move the mtime on, so a same-size rewrite within one clock tick is still a change."""
    stat = file.stat()
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_failed_login_does_not_touch_the_file(htfile: Path) -> None:
    """The request path never stats or reads: only `refresh` (the server's sweep) does."""
    users = Htpasswd.load(htfile)
    htfile.write_text("carol:newpass\n")
    assert users.check_header(basic("carol", "newpass")) is None
    assert users.refresh()
    assert users.check_header(basic("carol", "newpass")) == "carol"


def test_refresh_drops_cached_logins_the_file_no_longer_backs(htfile: Path) -> None:
    users = Htpasswd.load(htfile)
    alice, bob = basic("alice", "wonder"), basic("bob", "builder")
    assert users.check_header(alice) == "alice"
    assert users.check_header(bob) == "bob"
    htfile.write_text(htfile.read_text().replace("bob:builder", "bob:rebuilt"))
    _touch_later(htfile)
    assert users.refresh()
    assert users.check_header(bob) is None  # changed password: cached login dropped
    assert users.check_header(basic("bob", "rebuilt")) == "bob"
    users._entries.clear()  # alice's hash did not change: her cached login survived
    assert users.check_header(alice) == "alice"


def test_refresh_removed_user(htfile: Path) -> None:
    users = Htpasswd.load(htfile)
    assert users.check_header(basic("alice", "wonder")) == "alice"
    htfile.write_text("bob:builder\n")
    assert users.refresh()
    assert users.check_header(basic("alice", "wonder")) is None


def test_unchanged_file_not_reparsed(htfile: Path) -> None:
    users = Htpasswd.load(htfile)
    entries = users._entries
    assert not users.refresh()
    assert users._entries is entries


def test_vanished_file_keeps_users(htfile: Path, caplog: pytest.LogCaptureFixture) -> None:
    users = Htpasswd.load(htfile)
    htfile.unlink()
    assert not users.refresh()
    assert not users.refresh()
    assert users.check_header(basic("alice", "wonder")) == "alice"
    warnings = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once a second
    htfile.write_text("bob:builder\n")
    assert users.refresh()
    assert users.users == frozenset({"bob"})


def test_unparseable_file_keeps_users(htfile: Path, caplog: pytest.LogCaptureFixture) -> None:
    users = Htpasswd.load(htfile)
    htfile.write_text("this is not\nan htpasswd file\n")
    assert not users.refresh()
    assert users.users == frozenset({"alice", "bob"})
    assert "has no user:hash line" in caplog.text
    htfile.write_text("# everyone out\n")
    assert users.refresh()  # an empty file is a deliberate lock-out, not a broken one
    assert users.users == frozenset()


def test_malformed_lines_skipped_by_number(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "htpasswd"
    file.write_text("alice:x\nhunter2\n:nouser\nbob:y\n")
    users = Htpasswd.load(file)
    assert users.users == frozenset({"alice", "bob"})
    assert "line 2, 3 not user:hash" in caplog.text
    assert "hunter2" not in caplog.text


def test_load_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Htpasswd.load(tmp_path / "nope")


# --- public paths ----------------------------------------------------------------------------
SETTINGS = AuthSettings(
    True, "R", Path("/x"),
    public_paths=("*.css", "/assets/", "/robots.txt", "/docs/*.html", "/api/v?/status*",
                  "/bad[*", "/x/[a-c]*.txt", "/y/[^a]*", "/exact?"),
    auth_patterns=(AuthPattern(re.compile(r"^/health"), "off"),
                   AuthPattern(re.compile(r"^/admin"), "basic")),
)


@pytest.mark.parametrize(("path", "public"), [
    ("/style.css", True),
    ("/deep/dir/style.css", True),
    ("/style.css/x", False),
    ("/assets/", True),
    ("/assets/js/app.js", True),
    ("/assets", False),
    ("/robots.txt", True),
    ("/robots.txt/", False),
    ("/docs/guide.html", True),
    ("/docs/sub/guide.html", False),  # `*` does not cross `/`
    ("/api/v1/status", True),
    ("/api/v12/status", False),
    ("/api/v1/statusx", True),
    ("/bad[", False),  # malformed glob never matches
    ("/bad[x", False),
    ("/exact?", False),  # `?` never public, not even by an exact entry (decoded `%3F`)
    ("/exactx", False),
    ("/x/b-file.txt", True),
    ("/x/d.txt", False),
    ("/y/b", True),
    ("/y/a", False),
    ("/y/ba", True),
    ("/y/ab", False),
    ("/y//", False),
    ("/healthz", True),
    ("/admin", False),
    ("/private", False),
])
def test_public_paths(path: str, public: bool) -> None:
    assert is_public(path, SETTINGS) is public
    assert PublicPaths.build(SETTINGS).matches(path) is public


@pytest.mark.parametrize("path", [
    "/admin;x.css", "/admin%3B.css", "/admin#x.css", "/admin?x.css", "/assets/;/../admin",
    "/assets/a;b", "/healthz;x", "/docs/a#.html",
])
def test_paths_with_delimiters_are_never_public(path: str) -> None:
    """A tenant may cut the path at `;`, `#` or `?` (the decided path holds them only as data,
    decoded from `%3B`/`%23`/`%3F`, or as a raw `;`): matching them could make a protected
    path look public (issue 14)."""
    decoded = path.replace("%3B", ";")
    assert PublicPaths.build(SETTINGS).matches(decoded) is False


def test_auth_off_means_everything_public() -> None:
    settings = AuthSettings(False, public_paths=("/only/",))
    assert is_public("/anything", settings)


def _open(public_paths: tuple[str, ...], patterns: tuple[tuple[str, str], ...] = (), *,
          enabled: bool = True, tenants: tuple[str, ...] = ("/sam/list1/",)) -> tuple[str, ...]:
    settings = AuthSettings(enabled, public_paths=public_paths, auth_patterns=tuple(
        AuthPattern(re.compile(regex), action) for regex, action in patterns))
    return everything_public(settings, PublicPaths.build(settings), tenants)


@pytest.mark.parametrize(("public_paths", "patterns", "warned"), [
    # The old config.example.yml: "/" meant the landing page but is a prefix of every path.
    (("/", "/index.html", "*.css", "/503.html"), (), ["auth.public_paths[0]: '/' is a prefix"]),
    (("/assets/", "*"), (), ["auth.public_paths[1]: '*' matches every path"]),
    ((), ((".*", "off"),), ["auth.auth_patterns[0]: '.*' with action 'off' matches every"]),
    ((), (("^/", "off"),), ["auth.auth_patterns[0]: '^/' with action 'off'"]),
    # Together, not one by one: letters a-m, n-z and the root page.
    ((), (("^/[a-m]", "off"), ("^/[n-z]", "off"), ("^/$", "off")),
     ["auth: public_paths and auth_patterns together make every path public"]),
    # What the shipped example does now: protects the tenants.
    (("/index.html", "*.css", "/503.html", "/*.html"), (("^/$", "off"),), []),
    (("/assets/", "/sam/"), (("^/api/", "off"), (".*", "require")), []),
])
def test_auth_that_protects_nothing_is_reported(public_paths: tuple[str, ...],
                                                patterns: tuple[tuple[str, str], ...],
                                                warned: list[str]) -> None:
    warnings = _open(public_paths, patterns)
    assert len(warnings) == len(warned), warnings
    for warning, start in zip(warnings, warned, strict=True):
        assert warning.startswith(start), warning


def test_auth_off_is_not_reported_as_protecting_nothing() -> None:
    assert _open(("/",), enabled=False) == ()


def test_a_public_tenant_path_alone_is_not_everything() -> None:
    """Making every tenant public is a choice the warning leaves alone: `/` itself and
    made-up paths outside the tenants stay protected."""
    assert _open(("/sam/",), tenants=("/sam/",)) == ()


@pytest.mark.parametrize(("glob", "regex"), [
    ("/a/*.css", r"/a/[^/]*\.css"),
    ("/a?", "/a[^/]"),
    (r"/a\*", r"/a\*"),
    ("/[a-c]", "/[a-c]"),
    ("/[", None),
    ("/[]", None),
    ("/[c-a]", None),
    ("/x\\", None),
])
def test_glob_to_regex(glob: str, regex: str | None) -> None:
    assert glob_to_regex(glob) == regex


# --- snapshot loading ------------------------------------------------------------------------
def base_config(tmp_path: Path, **kwargs: object) -> Config:
    return Config(source=tmp_path / "n.yml", listen=ListenAddress("", 0), **kwargs)  # type: ignore[arg-type]


def test_snapshot_missing_htpasswd_names_key(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    config = base_config(tmp_path, auth=AuthSettings(True, "R", missing))
    with pytest.raises(SnapshotError, match=r"^auth\.htpasswd: cannot read .*missing: No such"):
        build_snapshot(config)


def test_snapshot_reload_keeps_previous_users(tmp_path: Path, htfile: Path) -> None:
    good = build_snapshot(base_config(tmp_path, auth=AuthSettings(True, "R", htfile)))
    broken = base_config(tmp_path, auth=AuthSettings(True, "R", tmp_path / "gone"))
    assert build_snapshot(broken, previous=good).auth is good.auth


def test_snapshot_maintenance_page(tmp_path: Path) -> None:
    page = tmp_path / "503.html"
    page.write_bytes(b"<p>later</p>")
    snapshot = build_snapshot(base_config(tmp_path, maintenance=Maintenance(True, page)))
    assert snapshot.maintenance_body == b"<p>later</p>"
    assert snapshot.maintenance.status == 503
    assert snapshot.maintenance.headers == (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"), ("Expires", "0"), ("Retry-After", "5"))
    fallback = build_snapshot(base_config(tmp_path, maintenance=Maintenance(True,
                                                                             tmp_path / "no")))
    assert fallback.maintenance_body == BUILTIN_MAINTENANCE_PAGE
    assert b'http-equiv="refresh"' in BUILTIN_MAINTENANCE_PAGE
    assert build_snapshot(base_config(tmp_path)).auth is None
