"""Scoping a tenant's cookies to its prefix (`scope_cookies`), as nginx's `proxy_cookie_path`.

Room: PURE. Frameworks set `Path=/`, so without this every tenant on the host receives every
other tenant's cookies (a session valid in one is sent to all). Only the relay of a tenant
with the option calls this; other responses never pay for it.

Rule for each `Set-Cookie` (RFC 6265 §5.2.4): a Path already at or under the prefix is kept;
a missing or `/` Path becomes the prefix; any other Path is put under the prefix when the
tenant's path is stripped (the app thinks in paths below it), else replaced by the prefix.
"""

from __future__ import annotations


def under(path: bytes, prefix: bytes) -> bool:
    """RFC 6265 path-match of `prefix` against `path`: equal, or followed by a `/`."""
    return path == prefix or (path.startswith(prefix) and path[len(prefix):len(prefix) + 1]
                              == b"/")


def scoped_path(path: bytes | None, prefix: bytes, stripped: bool) -> bytes:
    """The Path a cookie gets: see the module docstring."""
    if not path or not path.startswith(b"/") or path == b"/":
        return prefix
    if under(path, prefix):
        return path
    return prefix + path if stripped else prefix


def scope_cookie(value: bytes, prefix: bytes, stripped: bool) -> bytes:
    """One Set-Cookie value with its Path attribute rewritten (added when missing)."""
    parts = value.split(b";")
    found = False
    for index in range(1, len(parts)):  # every Path: a browser uses the last one
        name, _, attr = parts[index].partition(b"=")
        if name.strip().lower() == b"path":
            parts[index] = b" Path=" + scoped_path(attr.strip(), prefix, stripped)
            found = True
    return b";".join(parts) if found else value + b"; Path=" + prefix


def scope_set_cookies(headers: list[tuple[bytes, bytes]], prefix: bytes,
                      stripped: bool) -> list[tuple[bytes, bytes]]:
    """The response headers with every Set-Cookie scoped; the same list when there is none."""
    if not any(name.lower() == b"set-cookie" for name, _ in headers):
        return headers
    return [(name, scope_cookie(value, prefix, stripped)) if name.lower() == b"set-cookie"
            else (name, value) for name, value in headers]
