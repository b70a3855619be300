"""What each key of the concise format (`version: 2`) means, for the generated reference and
the JSON Schema.

Room: PURE data, as `keydocs` is for the reference format's keys (same conventions; `docs`
joins both, and its test fails when a key has no text or a text no key).
"""

from __future__ import annotations

from collections.abc import Mapping

CONCISE_SECTIONS: Mapping[str, str] = {
    "ConciseFile": "A file with a top-level `version: 2`. `app` says what runs each tenant "
    "(a framework preset fills what it leaves out), `tenants` maps paths to their variables. "
    "Path patterns are globs (`*` one segment, `**` any depth, `{a,b}` alternatives; each a "
    "`$1`, `$2`... in targets) or regexes (starting with `^`, or `~` for an unanchored one). "
    "The reference format's own sections (`server`, `cable`, `maintenance`, `hooks`, "
    "`managed_processes`, `logging`, `stamps`) are accepted as they are; a concise key wins "
    "over the same setting there.",
    "AppSpec": "What runs each tenant. Every key the file leaves out comes from the preset "
    "(see concise.md for each preset's values).",
    "AuthConcise": "HTTP Basic authentication (on when this section is present).",
    "PlacementConcise": "Where the tenants whose path the key matches live (Fly deployment "
    "stamps): a replay to that region or machine for everything under their paths. The "
    "first matching key places a tenant.",
    "StaticConcise": "Static files served without waking a tenant; a bare string is `dir`.",
    "ProxyConcise": "A `proxies` value when a bare target URL is not enough. The key is a "
    "plain prefix (`/api/`), a glob or a regex.",
    "ReplayConcise": "A `replay` value: where requests whose path matches the key are served "
    "(Fly-Replay). A list of the reference's replay entries is accepted too.",
}

CONCISE_FIELDS: Mapping[str, str] = {
    "ConciseFile.version": "`2`: the concise format. A file without `version` is read in the "
    "reference format.",
    "ConciseFile.listen": "Port or `host:port` to listen on (`server.listen`).",
    "ConciseFile.app": "What runs each tenant: preset, command, environment, timeouts.",
    "ConciseFile.tenants": "A map from each tenant's path to its variables "
    "(`/sam/list1/: {owner: sam, list: list1}`), which fill `${name}` in `app.env`; or "
    "`pattern: /{owner}/{list}/` with `list: [sam/list1, ...]`; or both. A value with a "
    "`var` key is the long form: the reference format's tenant entry (env, name, hooks, "
    "memory_limit...) without its path.",
    "ConciseFile.static": "Static files: a directory (`public`), or a mapping.",
    "ConciseFile.health": "A path navigator answers itself with `200 OK` (`/up`), or the "
    "reference's `health_check` mapping.",
    "ConciseFile.auth": "HTTP Basic authentication.",
    "ConciseFile.redirects": "`{pattern: target}`, in order: a matching path is redirected "
    "(`$1` is the first wildcard). A list of `{from, to}` regex entries is accepted too.",
    "ConciseFile.rewrites": "`{pattern: target}`, in order: a matching path is rewritten "
    "before routing. A list of `{from, to}` regex entries is accepted too.",
    "ConciseFile.proxies": "`{prefix or pattern: target URL}`: forward those paths to another "
    "HTTP service; the value may be a mapping (see below) for more options.",
    "ConciseFile.replay": "`{pattern: {region|app|machine: ...}}`: serve those paths "
    "elsewhere (Fly-Replay).",
    "ConciseFile.placement": "`{tenant path or glob: {region|machine: ...}}`: where tenants "
    "live; requests for them elsewhere are replayed there.",
    "ConciseFile.server": "The reference format's `server` section, for what the concise keys "
    "do not cover (limits, idle, metrics, cgi_scripts, bot_detection, pid_file...).",
    "ConciseFile.cable": "The reference format's `cable` section; `enabled` defaults to the "
    "preset's.",
    "ConciseFile.maintenance": "The reference format's `maintenance` section.",
    "ConciseFile.hooks": "The reference format's `hooks`; `app.migrate` runs before any "
    "`hooks.tenant.before_start` given here.",
    "ConciseFile.managed_processes": "The reference format's `managed_processes`.",
    "ConciseFile.logging": "The reference format's `logging` section.",
    "ConciseFile.stamps": "The reference format's `stamps` section (`users` for one machine "
    "per user, `machine_start` to start a stopped destination).",
    "AppSpec.preset": "`generic` (the reference format's defaults), `rails`, `django`, "
    "`fastapi` or `node`; `\"\"` = generic.",
    "AppSpec.command": "The command that starts one tenant: a string (split as a shell "
    "would, no shell runs) or a list; `{{port}}` is the tenant's port. `\"\"` = the preset's "
    "(generic has none).",
    "AppSpec.module": "What `{module}` in the preset's command stands for: the WSGI module "
    "(django, `notesite.wsgi`), the ASGI app (fastapi, `main:app`), the script (node).",
    "AppSpec.dir": "Where the app lives: the working directory of every tenant "
    "(`\"\"` = navigator's own).",
    "AppSpec.port_env": "The environment variable that carries the port (`\"\"` = PORT).",
    "AppSpec.health": "The readiness probe's path (`\"\"` = the preset's).",
    "AppSpec.health_under_prefix": "Probe `<tenant path><health>` instead of `<health>` "
    "(unset = the preset's; django: true).",
    "AppSpec.ready_on_5xx": "Whether a 5xx probe answer means ready (unset = the preset's; "
    "generic: true, as the reference).",
    "AppSpec.prefix": "What the app sees of the tenant's path: `full` (the whole path), "
    "`strip` (without the prefix, which goes along as X-Forwarded-Prefix), or `script_name` "
    "(the whole path and `SCRIPT_NAME=<prefix>`). `\"\"` = the preset's.",
    "AppSpec.cookies": "`scoped` (each Set-Cookie Path put under the tenant's path) or "
    "`shared` (as the app sets them). `\"\"` = the preset's.",
    "AppSpec.startup_timeout": "How long a request waits for a starting tenant (duration; "
    "`\"\"` = the preset's).",
    "AppSpec.ready_timeout": "How long a tenant may boot before it is stopped (duration; "
    "`\"\"` = 5m).",
    "AppSpec.start_delay": "Wait this long after spawning before probing (duration).",
    "AppSpec.idle": "Stop a tenant after this long without requests (duration; `\"\"` = "
    "10m).",
    "AppSpec.websockets": "Whether open WebSockets keep a tenant running (unset = true).",
    "AppSpec.env": "Each tenant's environment; `${name}` is filled from the tenant's "
    "variables, `${prefix}` is its path without the last `/`, `${NAME:-default}` comes from "
    "navigator's environment. Wins over the preset's variables.",
    "AppSpec.migrate": "Run before each tenant's process starts, with its environment: a "
    "command, a hook mapping (`{command, args, timeout}`), or `false` for none. Unset = the "
    "preset's (rails: `bin/rails db:prepare`, django: `python manage.py migrate "
    "--noinput`).",
    "AppSpec.pools": "The reference format's `applications.pools` (max_size, start_port, "
    "user...); `idle` wins over its timeout.",
    "StaticConcise.dir": "The directory (`\"\"` = public).",
    "StaticConcise.try": "Suffixes tried for an extension-less path (`[index.html, .html]`).",
    "StaticConcise.extensions": "Only serve files with these extensions (empty = any).",
    "StaticConcise.normalize_trailing_slashes": "Redirect `/dir` to `/dir/` when it has an "
    "index file.",
    "StaticConcise.assets": "URL prefix of fingerprinted assets, cached for a year as "
    "immutable; unset = the preset's (rails `/assets/`, django and fastapi `/static/`), "
    "`\"\"` = none.",
    "StaticConcise.cache": "`Cache-Control` max-age of every other file (duration).",
    "StaticConcise.cache_control": "The reference format's `cache_control`, for the rest.",
    "AuthConcise.enabled": "Set false to keep the section but turn auth off.",
    "AuthConcise.htpasswd": "The htpasswd file (bcrypt, apr1, {SHA}... entries).",
    "AuthConcise.realm": "The realm shown by the browser (`\"\"` = Restricted).",
    "AuthConcise.public": "Paths served without a password: exact paths, `/prefix/`, or "
    "`*.css` globs (the reference's public_paths).",
    "AuthConcise.open": "Path patterns (globs or regexes) served without a password.",
    "AuthConcise.patterns": "The reference format's `auth_patterns`, after `open`.",
    "PlacementConcise.region": "The Fly region these tenants live in.",
    "PlacementConcise.machine": "The Fly machine they live on (wins over region).",
    "PlacementConcise.prefer_instance": "The Fly machine they prefer (one machine per user): "
    "the replay carries `prefer_instance`, and Fly falls back to any machine when it cannot "
    "be reached. Loses to `machine`, wins over `region`.",
    "ProxyConcise.target": "The service's URL (`http://127.0.0.1:9000`).",
    "ProxyConcise.name": "A name for logs (`\"\"` = the key).",
    "ProxyConcise.prefix": "A prefix kept beside a pattern key (written by navigator "
    "convert).",
    "ProxyConcise.strip_path": "Forward the path without the matched prefix.",
    "ProxyConcise.headers": "Request headers to set.",
    "ProxyConcise.response_headers": "Response headers to set.",
    "ProxyConcise.websocket": "Relay WebSocket upgrades.",
    "ReplayConcise.app": "Replay to this Fly app.",
    "ReplayConcise.region": "Replay to this region.",
    "ReplayConcise.machine": "Replay to this machine.",
    "ReplayConcise.prefer_instance": "Replay preferring this machine (Fly falls back to any).",
    "ReplayConcise.status": "Status of the replay answer.",
    "ReplayConcise.methods": "Only these methods (empty = any).",
}
