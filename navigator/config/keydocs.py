"""What each configuration key means, for the generated reference and the JSON Schema.

Room: PURE data. `docs` joins these texts to the msgspec Structs of `schema` (names, types
and defaults come from the Structs, never from here), and a test fails when a key of the
Structs has no text here or a text names a key that no longer exists, so the reference
cannot drift from what the loader accepts. Keys: `StructName` for a section's introduction,
`StructName.key` for one key. "(duration)" means Go duration syntax (`90s`, `10m`, `1h30m`),
"(size)" a byte size (`512M`, `64K`); `""` in a default column means "not set": the
text says what applies then.
"""

from __future__ import annotations

from collections.abc import Mapping

SECTIONS: Mapping[str, str] = {
    "NavigatorFile": "The whole file. Every section is optional; unknown keys are accepted "
    "and listed as warnings (`navigator check` shows them).",
    "ServerSpec": "The listener and everything answered before a tenant is involved.",
    "BotDetectionSpec": "Requests whose User-Agent looks like a crawler or scanner.",
    "HealthCheckSpec": "A health-check path for the platform's probes.",
    "HealthResponseSpec": "A synthetic answer for the health-check path. Synthetic answers "
    "never start a tenant and never count as activity for machine idle.",
    "StaticSpec": "Static files served directly, without waking a tenant.",
    "CacheControlSpec": "`Cache-Control` for static files.",
    "CacheOverrideSpec": "One per-prefix `Cache-Control` rule; the longest matching prefix "
    "wins.",
    "IdleSpec": "Machine idle: suspend, stop or exit when no request or WebSocket has been "
    "active for a while (after running `hooks.server.idle`).",
    "CgiScriptSpec": "One CGI script run per request (RFC 3875 environment).",
    "LimitsSpec": "Extension: protocol limits and timeouts. Sizes like `64K`, durations like "
    "`30s`; empty keeps the default shown in each key's text.",
    "StatusPageSpec": "Extension: the HTML status page, from the same data as "
    "`navigator status`; behind auth.",
    "MetricsSpec": "Extension: Prometheus metrics (text format 0.0.4), answered to loopback "
    "clients only.",
    "CableSpec": "Built-in WebSocket pub/sub (the Rails TurboCable client protocol). It "
    "answers WebSocket upgrades on `path` before any tenant: a tenant mounted over that path "
    "(a Rails app at `/` with its own Action Cable) never sees them, and `navigator check` "
    "warns. Then set `enabled: false`, or move `path`.",
    "AuthSpec": "HTTP Basic authentication for the whole site, with public exceptions.",
    "AuthPatternSpec": "A regex over the request path; `action: off` makes matching paths "
    "public.",
    "MaintenanceSpec": "Maintenance mode: every non-health request gets the 503 page.",
    "RoutesSpec": "Rules evaluated in order before static files and tenants.",
    "RewriteSpec": "One rule: a regex (`from`, RE2/Go syntax) and a replacement (`to`, with "
    "`$1` / `${name}`). Redirects answer 302; rewrites change the path and continue.",
    "ReverseProxySpec": "A route to another HTTP service.",
    "FlySpec": "Fly.io routing.",
    "ReplaySpec": "A `fly-replay` rule: requests whose path matches are replayed by Fly's "
    "proxy to another region, app or machine (bodies of 1 MB or more are proxied instead).",
    "ApplicationsSpec": "The tenants and how their processes are started.",
    "PoolsSpec": "The tenant process pool.",
    "FrameworkSpec": "The command that starts a tenant when no `runtime`/`server` map entry "
    "applies.",
    "TenantSpec": "One tenant: a URL prefix served by its own process.",
    "TenantHooksSpec": "Commands run when a tenant starts or stops, in the tenant's `root`, "
    "with the server's environment plus the tenant's `env`. In `args`, `${name}`, "
    "`${path}`, `${root}` and `${port}` are replaced by the tenant's name, URL prefix, "
    "working directory and port.",
    "HookSpec": "One hook command, run without a shell.",
    "HelperProcessSpec": "Extension: the process behind a reverse-proxy route, run as a "
    "hidden tenant (started on demand, readiness-probed, idle-stopped, restarted after a "
    "crash by the next request).",
    "ManagedProcessSpec": "A helper process (redis, a worker) started with navigator, "
    "restarted with back-off when `auto_restart` is set, stopped after the tenants.",
    "HooksSpec": "Lifecycle hook commands.",
    "ServerHooksSpec": "Server lifecycle hooks. A successful `ready` or `resume` hook may "
    "name a `reload_config`.",
    "LoggingSpec": "Server, tenant and access logs.",
    "VectorSpec": "Also send tenant and managed-process output (JSON, with `tenant`) and "
    "the access log to a Vector socket; navigator's own lines stay on stdout.",
    "StampsSpec": "Extension: deployment-stamp networking.",
    "PlacementSpec": "One user's tenants and where they live (one machine per user).",
    "MachineStartSpec": "Extension: DNS-checked replay that starts stopped machines.",
}

FIELDS: Mapping[str, str] = {
    # --- whole file
    "NavigatorFile.server": "Listener, static files, idle, limits, metrics.",
    "NavigatorFile.cable": "Built-in WebSocket pub/sub.",
    "NavigatorFile.auth": "Basic authentication.",
    "NavigatorFile.maintenance": "Maintenance mode.",
    "NavigatorFile.routes": "Redirects, rewrites, reverse proxies, fly-replay.",
    "NavigatorFile.applications": "Tenants and their processes.",
    "NavigatorFile.managed_processes": "Helper processes started with navigator.",
    "NavigatorFile.hooks": "Lifecycle hooks.",
    "NavigatorFile.logging": "Log format and destinations.",
    "NavigatorFile.stamps": "Extension: deployment-stamp networking.",
    # --- server
    "ServerSpec.listen": "Port or address: `3000`, `:3000`, `127.0.0.1:3000`. Empty: 3000 on "
    "all interfaces. A reload that changes it binds the new address, then closes the old "
    "listener (open connections stay); if the new one cannot be bound the reload is rejected.",
    "ServerSpec.hostname": "Accepted for compatibility; not used.",
    "ServerSpec.root_path": "URL prefix of the whole site (`/showcase`); a trailing `/` is "
    "added, and the slash-less form redirects to it.",
    "ServerSpec.trust_proxy": "Believe the forwarding headers of the peer (only when every "
    "connection comes through a proxy you run, e.g. Fly's edge): the client address (access "
    "log `client_ip`, `$remote_addr`, the `X-Real-IP` sent on) is `Fly-Client-IP`, else the "
    "right-most non-internal `X-Forwarded-For` entry, else `X-Real-IP`; incoming "
    "`X-Forwarded-Proto` and `X-Forwarded-Host` are passed on. Off: the client is the socket "
    "peer and those headers are replaced (`X-Forwarded-For` is appended to either way). "
    "Unset: on when `FLY_APP_NAME` is in the environment (on Fly every connection comes "
    "through Fly's proxy), off elsewhere. See docs/operations.md.",
    "ServerSpec.disable_compression": "Never add or strip content encoding on the proxy "
    "path (navigator passes bytes through untouched either way).",
    "ServerSpec.bot_detection": "What to do with bots (tenants may override).",
    "ServerSpec.health_check": "Health-check path and optional synthetic answer.",
    "ServerSpec.static": "Static files and try_files.",
    "ServerSpec.idle": "Machine idle action.",
    "ServerSpec.cgi_scripts": "CGI scripts by exact path.",
    "ServerSpec.limits": "Extension: protocol limits and timeouts.",
    "ServerSpec.pid_file": "Extension: where the server writes its pid (used by `-s reload`, "
    "`-s stop`, `status`). Empty: `/tmp/navigator.pid`. The control socket `navigator "
    "restart` talks to is beside it (`<pid_file>.sock`, mode 0600).",
    "ServerSpec.metrics": "Extension: the Prometheus endpoint.",
    "ServerSpec.status_page": "Extension: an HTML status page (tenants, processes, recent "
    "starts, stops and crashes), like HAProxy's stats page.",
    "ServerSpec.access_log": "One JSON access-log line per request: `true`/`false`, or a "
                             "file path (as older reference versions took) to write them "
                             "there instead of stdout.",
    "BotDetectionSpec.enabled": "Detect bots by User-Agent.",
    "BotDetectionSpec.action": "`reject` (403), `ignore` (serve normally) or `static-only` "
    "(static files yes, tenants no).",
    "HealthCheckSpec.path": "Exact request path of the health check. Empty: none.",
    "HealthCheckSpec.response": "Answer it directly; without this section the request goes to "
    "the tenant like any other.",
    "HealthResponseSpec.status": "Status code.",
    "HealthResponseSpec.body": "Response body.",
    "HealthResponseSpec.headers": "Response headers; `Content-Type` defaults to `text/plain`.",
    "StaticSpec.public_dir": "Directory of static files, relative to the working directory. "
    "Empty: `public`.",
    "StaticSpec.allowed_extensions": "Extensions (without dots) served from `public_dir`; empty: "
    "any.",
    "StaticSpec.try_files": "Suffixes tried in order for extension-less paths (`index.html`, "
    "`.html`) before any tenant is involved; empty: off.",
    "StaticSpec.normalize_trailing_slashes": "Redirect (301) `/dir` to `/dir/` when "
    "`dir/index.html` exists.",
    "StaticSpec.cache_control": "`Cache-Control` headers.",
    "CacheControlSpec.default": "max-age for every static file (duration). Empty: no header.",
    "CacheControlSpec.default_immutable": "Add `immutable` to the default.",
    "CacheControlSpec.overrides": "Per-prefix rules.",
    "CacheOverrideSpec.path": "URL prefix.",
    "CacheOverrideSpec.max_age": "max-age (duration).",
    "CacheOverrideSpec.immutable": "Add `immutable`.",
    "IdleSpec.action": "`suspend` or `stop` (Fly Machines API), extensions `exit` (end "
    "navigator) and `command`; anything else: off.",
    "IdleSpec.timeout": "Idle time before the action (duration). Empty: 10m.",
    "IdleSpec.command": "Extension: argv run for action `command`.",
    "IdleSpec.fly_api_socket": "Extension: Fly API socket. Empty: `/.fly/api`.",
    "IdleSpec.count_websockets": "Extension: open WebSockets keep the machine awake.",
    "CgiScriptSpec.path": "Exact URL path.",
    "CgiScriptSpec.script": "Executable to run.",
    "CgiScriptSpec.method": "Only this method (others get 405). Empty: any.",
    "CgiScriptSpec.user": "Run as this user (needs root).",
    "CgiScriptSpec.group": "Run with this group (needs root).",
    "CgiScriptSpec.allowed_users": "Only these authenticated users (403 otherwise). Empty: "
    "anyone allowed by `auth`.",
    "CgiScriptSpec.env": "Extra environment variables.",
    "CgiScriptSpec.timeout": "Kill the script after this long (duration). Empty: no limit.",
    "CgiScriptSpec.reload_config": "After a successful run, reload this config file if it "
    "is another file or has changed.",
    "LimitsSpec.max_request_line": "Longest request line (size); longer: 414. Default 8K.",
    "LimitsSpec.max_header_bytes": "Largest request head (size); larger: 431. Default 64K.",
    "LimitsSpec.max_header_count": "Most request headers; more: 431. Default 100.",
    "LimitsSpec.max_body_bytes": "Largest request body (size); larger: 413. Default: no limit.",
    "LimitsSpec.max_connections": "Most open client connections. Default: no limit.",
    "LimitsSpec.header_timeout": "Time to receive a request head (duration). Default 30s.",
    "LimitsSpec.keepalive_timeout": "Idle keep-alive connection lifetime. Default 75s.",
    "LimitsSpec.body_timeout": "Longest pause while receiving a body. Default 60s.",
    "LimitsSpec.upstream_connect_timeout": "Connect to a tenant or proxy target. Default 5s.",
    "LimitsSpec.upstream_response_timeout": "Wait for a response head (504 after). Default "
    "300s.",
    "LimitsSpec.websocket_idle_timeout": "Close silent WebSocket tunnels after this. "
    "Default: never.",
    "LimitsSpec.shutdown_timeout": "The whole graceful shutdown, from SIGTERM to exit: "
    "in-flight requests get what remains after reserving the stop hooks' timeouts, 5s "
    "SIGTERM grace for tenants and 5s for managed processes (each only when there are any) "
    "and 1s margin; `navigator check` warns when the reserve exceeds it. Keep it below the "
    "platform's kill timeout (Fly: `kill_timeout`). Default 30s.",
    "LimitsSpec.stop_hook_timeout": "Timeout for a `hooks.server.stop` or tenant `stop` hook "
    "that sets none, so a hanging stop hook cannot outlast the shutdown budget. Default 10s.",
    "MetricsSpec.enabled": "Serve the endpoint.",
    "MetricsSpec.path": "Endpoint path. Empty: `/_navigator/metrics`.",
    "MetricsSpec.listen": "A separate internal listener (same forms as `server.listen`) that "
    "answers the metrics path to any peer that reaches it, e.g. `:9091` for Fly's `[metrics]` "
    "scraper; the main listener still answers loopback peers. Empty: the main listener only.",
    # --- cable, auth, maintenance
    "CableSpec.enabled": "Serve the pub/sub WebSocket.",
    "CableSpec.path": "WebSocket path. Empty: `/cable`.",
    "CableSpec.broadcast_path": "POST path for broadcasts (loopback clients). Empty: "
    "`/_broadcast`.",
    "AuthSpec.enabled": "Require a login (also needs `htpasswd`).",
    "AuthSpec.realm": "Realm in `WWW-Authenticate`; `off` disables auth. Empty: `Restricted`.",
    "AuthSpec.htpasswd": "htpasswd file (bcrypt, apr1, MD5-crypt, SHA-crypt, `{SHA}`, "
    "`{SSHA}`); checked once a second and re-read when it changes, so added or removed users "
    "and changed passwords apply within about a second, no reload needed (a missing or "
    "unparseable file keeps the last good users, with a warning). Auth is off while empty.",
    "AuthSpec.public_paths": "Paths that need no login: prefixes (`/assets/`), globs "
    "(`*.css`) or exact paths. An entry ending in `/` is a prefix, so `/` makes every path "
    "public (`navigator check` warns); for the root page alone use an `auth_patterns` entry "
    "`^/$` with action `off`.",
    "AuthSpec.auth_patterns": "Regex exceptions. A bad regex refuses the file only while auth "
    "is on; with auth off it is a warning.",
    "AuthPatternSpec.pattern": "Regex over the path.",
    "AuthPatternSpec.action": "`off`: public. Other actions are accepted and ignored.",
    "MaintenanceSpec.enabled": "Answer 503 with the maintenance page.",
    "MaintenanceSpec.page": "Page to serve. Empty: `503.html` in the public directory, else a "
    "built-in page.",
    # --- routes
    "RoutesSpec.redirects": "302 redirects.",
    "RoutesSpec.rewrites": "Internal rewrites.",
    "RoutesSpec.reverse_proxies": "Routes to other HTTP services.",
    "RoutesSpec.fly": "Fly.io replay rules.",
    "RewriteSpec.from": "Regex (Go RE2 syntax).",
    "RewriteSpec.to": "Replacement; the query string is kept.",
    "ReverseProxySpec.name": "Name for logs.",
    "ReverseProxySpec.path": "Regex over the path; wins over `prefix`.",
    "ReverseProxySpec.prefix": "Path prefix.",
    "ReverseProxySpec.target": "Base URL of the service, `http://host:port`.",
    "ReverseProxySpec.strip_path": "Remove the prefix before forwarding.",
    "ReverseProxySpec.headers": "Request headers to set; `$remote_addr`, `$scheme`, `$host` "
    "are expanded.",
    "ReverseProxySpec.response_headers": "Response headers to set.",
    "ReverseProxySpec.websocket": "Relay WebSocket upgrades.",
    "ReverseProxySpec.process": "Extension: an on-demand helper process as the target "
    "(instead of `target`). Started on the route's first request (which waits for it, as "
    "for a tenant), stopped after `idle_timeout` without requests or open WebSockets; same "
    "logs, metrics and `navigator status` as a tenant, named after the route. See "
    "docs/capacity.md.",
    "FlySpec.replay": "fly-replay rules, in order.",
    "FlySpec.sticky_sessions": "Removed upstream feature: accepted and ignored.",
    "ReplaySpec.path": "Regex over the path.",
    "ReplaySpec.app": "Replay to this Fly app.",
    "ReplaySpec.region": "Replay to this region.",
    "ReplaySpec.machine": "Extension: replay to this machine id (wins over region).",
    "ReplaySpec.prefer_instance": "Extension: replay preferring this machine id (Fly falls "
    "back to any machine of the app); loses to `machine`, wins over region.",
    "ReplaySpec.status": "Status of the replay answer.",
    "ReplaySpec.methods": "Extension: only these methods; empty: any.",
    # --- applications
    "ApplicationsSpec.pools": "Process pool settings.",
    "ApplicationsSpec.env": "Environment template for every tenant: `${name}` is filled from "
    "the tenant's `var`, what remains from navigator's environment (`${NAME:-default}`).",
    "ApplicationsSpec.runtime": "Framework name → interpreter (`ruby`).",
    "ApplicationsSpec.server": "Framework name → server script (`bin/rails`).",
    "ApplicationsSpec.args": "Framework name → argument list; `{{port}}` is replaced.",
    "ApplicationsSpec.health_check": "Readiness probe path, asked on the tenant's own port; "
    "any HTTP answer means ready (see `ready_on_5xx`, `prefix_health_check`). Empty: `/`.",
    "ApplicationsSpec.startup_timeout": "How long a request waits for a starting tenant before "
    "getting the maintenance page (duration); the start goes on and a later request is "
    "served once the tenant is ready. Empty: 5s.",
    "ApplicationsSpec.ready_timeout": "Extension: how long a tenant process may boot before "
    "it counts as failed and is stopped (duration; never shorter than `startup_timeout`). "
    "Empty: 5m.",
    "ApplicationsSpec.track_websockets": "Open WebSockets keep a tenant from idling out.",
    "ApplicationsSpec.strip_prefix": "Extension: forward a tenant's requests without its "
    "path (`/blog/posts` → `/posts` for the tenant at `/blog/`) and send the prefix as "
    "`X-Forwarded-Prefix: /blog`: for servers that add a root path themselves (uvicorn "
    "`--root-path`/`UVICORN_ROOT_PATH`, Werkzeug's `ProxyFix(x_prefix=1)`). Off: the full "
    "path, as the reference. Do not combine with `script_name` on gunicorn, which expects "
    "the full path and answers 500.",
    "ApplicationsSpec.script_name": "Extension: put `SCRIPT_NAME=<tenant path without its "
    "last />` in each tenant's environment unless its env sets one: gunicorn strips it from "
    "the full path and Django/Flask build links under it.",
    "ApplicationsSpec.scope_cookies": "Extension: rewrite the `Path` of each tenant's "
    "`Set-Cookie` to the tenant's path, as nginx's `proxy_cookie_path`: a missing or `/` "
    "Path becomes the prefix, a Path under it is kept. Off (the reference): frameworks set "
    "`Path=/` and **every tenant on the host receives every other tenant's cookies** "
    "(sessions, CSRF tokens). Turn it on unless tenants must share a cookie.",
    "ApplicationsSpec.prefix_health_check": "Extension: send the readiness probe under each "
    "tenant's path (`/django/alpha/up` for `health_check: /up`): for apps that answer only "
    "below their prefix (gunicorn with `SCRIPT_NAME` answers 500 elsewhere). Not with "
    "`strip_prefix`, where the app's own paths have no prefix.",
    "ApplicationsSpec.ready_on_5xx": "Extension: whether a 5xx answer to the readiness probe "
    "counts as ready. On (the reference): any HTTP answer does. Off: a 5xx means not yet, "
    "and requests wait (up to `startup_timeout`) until the probe gets a 1xx-4xx.",
    "ApplicationsSpec.framework": "The default start command.",
    "ApplicationsSpec.tenants": "The tenants; a request goes to the longest matching prefix.",
    "PoolsSpec.max_size": "Most tenants running at once; the least recently used idle one is "
    "stopped to make room. Default: no limit.",
    "PoolsSpec.timeout": "Stop a tenant after this long without requests (duration). Empty: "
    "10m.",
    "PoolsSpec.start_port": "First port handed to tenants (the lowest free one is used).",
    "PoolsSpec.default_memory_limit": "Memory limit per tenant (size; cgroup v2, root only).",
    "PoolsSpec.user": "Run tenants as this user (needs root).",
    "PoolsSpec.group": "Run tenants with this group (needs root).",
    "PoolsSpec.max_processes": "Most processes per tenant, each on its own port. A new one "
    "starts when every process is busy and requests wait. `max_size` counts processes.",
    "PoolsSpec.min_instances": "Processes per tenant started at boot and after a reload, "
    "never stopped for idleness.",
    "PoolsSpec.max_concurrency": "Most requests in flight per process (a websocket holds its "
    "slot until it closes); beyond, requests wait in the tenant's FIFO queue. 0: no limit "
    "(requests go to the least busy process).",
    "PoolsSpec.max_queue": "Most requests waiting per tenant; one more is answered 503 with "
    "`Retry-After` and the maintenance page at once. 0: never wait (also not for a start).",
    "PoolsSpec.queue_timeout": "Longest wait for a process (duration), then 503. Empty: the "
    "tenant's `startup_timeout`.",
    "PoolsSpec.max_requests": "Replace a process after this many requests (plus up to 10% "
    "jitter): a new one starts, the old one finishes its requests and stops. 0: never.",
    "PoolsSpec.memory_soft_limit": "Replace a process gracefully when the RSS of its process "
    "tree exceeds this (size; checked every few seconds).",
    "PoolsSpec.drain_timeout": "How long a replaced process keeps open websockets before it "
    "is stopped anyway (duration). Empty: 5m.",
    "FrameworkSpec.command": "Executable.",
    "FrameworkSpec.args": "Arguments; `{{port}}` is replaced.",
    "FrameworkSpec.app_directory": "Working directory when the tenant sets no `root`.",
    "FrameworkSpec.port_env_var": "Variable that carries the port. Empty: `PORT`.",
    "FrameworkSpec.start_delay": "Wait before spawning (duration).",
    "TenantSpec.path": "URL prefix (a trailing `/` is added); the tenant sees full paths "
    "unless `strip_prefix`.",
    "TenantSpec.name": "Name in logs and metrics. Empty: derived from the path. A name "
                       "another tenant already has gets `-2`, `-3`... (with a warning).",
    "TenantSpec.root": "Working directory. Empty: navigator's.",
    "TenantSpec.env": "Environment added as is (after the template).",
    "TenantSpec.var": "Values for `${name}` in `applications.env`.",
    "TenantSpec.framework": "Key into the `runtime`/`server`/`args` maps.",
    "TenantSpec.runtime": "Interpreter override.",
    "TenantSpec.server": "Server script override.",
    "TenantSpec.args": "Argument override; `{{port}}` is replaced.",
    "TenantSpec.health_check": "Readiness probe path override.",
    "TenantSpec.track_websockets": "Override of `applications.track_websockets`; unset: "
    "inherit.",
    "TenantSpec.strip_prefix": "Extension: override of `applications.strip_prefix`; unset: "
    "inherit.",
    "TenantSpec.script_name": "Extension: override of `applications.script_name`; unset: "
    "inherit.",
    "TenantSpec.scope_cookies": "Extension: override of `applications.scope_cookies`; unset: "
    "inherit.",
    "TenantSpec.prefix_health_check": "Extension: override of "
    "`applications.prefix_health_check`; unset: inherit.",
    "TenantSpec.ready_on_5xx": "Extension: override of `applications.ready_on_5xx`; unset: "
    "inherit.",
    "TenantSpec.hooks": "This tenant's own hooks (each list runs after the defaults).",
    "TenantSpec.public_dir": "Accepted for compatibility; not used (static files come from "
    "`server.static.public_dir`).",
    "TenantSpec.startup_timeout": "Override of `applications.startup_timeout` (duration).",
    "TenantSpec.ready_timeout": "Extension: override of `applications.ready_timeout` "
    "(duration).",
    "TenantSpec.memory_limit": "Memory limit (size; cgroup v2, root only).",
    "TenantSpec.user": "Run as this user (needs root).",
    "TenantSpec.group": "Run with this group (needs root).",
    "TenantSpec.max_processes": "Override of `applications.pools.max_processes`.",
    "TenantSpec.min_instances": "Override of `applications.pools.min_instances`.",
    "TenantSpec.max_concurrency": "Override of `applications.pools.max_concurrency`.",
    "TenantSpec.max_queue": "Override of `applications.pools.max_queue`.",
    "TenantSpec.queue_timeout": "Override of `applications.pools.queue_timeout` (duration).",
    "TenantSpec.idle_timeout": "Stop this tenant's processes above `min_instances` after "
    "this long without requests: a duration or plain seconds. Unset: `pools.timeout`.",
    "TenantSpec.max_requests": "Override of `applications.pools.max_requests`.",
    "TenantSpec.memory_soft_limit": "Override of `applications.pools.memory_soft_limit`.",
    "TenantSpec.drain_timeout": "Override of `applications.pools.drain_timeout`.",
    "TenantSpec.bot_detection": "Override of `server.bot_detection`.",
    "TenantSpec.region": "Extension: the Fly region this tenant lives in; elsewhere its "
    "requests are replayed there.",
    "TenantSpec.machine": "Extension: the Fly machine it lives on (wins over region); "
    "requests are replayed with `instance` (forced: when that machine cannot be reached, "
    "the maintenance page).",
    "TenantSpec.prefer_instance": "Extension: the Fly machine it prefers (wins over region, "
    "loses to `machine`); requests are replayed with `prefer_instance`, and Fly falls back "
    "to any machine of the app when that one cannot be reached, which then serves it.",
    "TenantHooksSpec.before_start": "Extension: run before the tenant's process is spawned; "
    "the start waits for them (migrations). A failure means no spawn: the request gets "
    "503; failing again right away puts the tenant in the crash back-off (503 without a "
    "run until it ends). A hook without its own timeout is killed after the tenant's "
    "`ready_timeout`.",
    "TenantHooksSpec.start": "Run after the tenant's process is spawned, alongside its boot "
    "(the first request may arrive before they finish).",
    "TenantHooksSpec.stop": "Run before the tenant's process is stopped.",
    "HookSpec.command": "Executable.",
    "HookSpec.args": "Arguments.",
    "HookSpec.timeout": "Kill the hook (its whole process tree) after this long (duration). "
    "Empty: no limit, except stop hooks, which default to `server.limits.stop_hook_timeout`.",
    "HookSpec.reload_config": "After success, reload this config (server `ready`/`resume` "
    "hooks).",
    "HelperProcessSpec.command": "Executable (required).",
    "HelperProcessSpec.args": "Arguments; `{{port}}` is replaced by the port navigator "
    "chose.",
    "HelperProcessSpec.env": "Extra environment (`${NAME}` expanded from navigator's).",
    "HelperProcessSpec.working_dir": "Working directory; empty = navigator's.",
    "HelperProcessSpec.port_env_var": "Variable holding the port; empty = "
    "`applications.framework.port_env_var`, else `PORT`.",
    "HelperProcessSpec.health_check": "Readiness probe path; any HTTP answer means ready. "
    "Empty = `/`.",
    "HelperProcessSpec.idle_timeout": "Stop after this long without requests or WebSockets "
    "(duration); empty = `applications.pools.timeout`; `0` = never.",
    "HelperProcessSpec.startup_timeout": "How long a request waits for the start before "
    "the maintenance page (duration); empty = `applications.startup_timeout`.",
    "HelperProcessSpec.ready_timeout": "How long the process may boot before it is stopped "
    "(duration); empty = `applications.ready_timeout`.",
    "HelperProcessSpec.memory_limit": "Hard memory limit (size, cgroups, root only).",
    "ManagedProcessSpec.name": "Identity across reloads.",
    "StatusPageSpec.path": "URL path of the page (exact match, GET); empty = off. Always "
    "behind auth, even when `auth.public_paths` would match it.",
    "StatusPageSpec.without_auth": "Serve the page while auth is off. Without this, a "
    "status page with auth off is a configuration error: the page shows every tenant's "
    "path, pid and port.",
    "ManagedProcessSpec.command": "Executable.",
    "ManagedProcessSpec.args": "Arguments.",
    "ManagedProcessSpec.working_dir": "Working directory.",
    "ManagedProcessSpec.env": "Extra environment.",
    "ManagedProcessSpec.auto_restart": "Restart when it exits (with back-off).",
    "ManagedProcessSpec.start_delay": "Wait before starting (duration).",
    # --- hooks, logging, stamps
    "HooksSpec.server": "Server lifecycle hooks.",
    "HooksSpec.tenant": "Default hooks for every tenant.",
    "ServerHooksSpec.start": "Before listening; a failure stops navigator.",
    "ServerHooksSpec.ready": "After listening, in the background.",
    "ServerHooksSpec.idle": "Before the idle action.",
    "ServerHooksSpec.resume": "After a resume from suspend; requests wait for them.",
    "ServerHooksSpec.stop": "At shutdown, before tenants are stopped.",
    "LoggingSpec.format": "`text` or `json`. Empty: `text`. Under `json`, a child line that "
    "is a JSON object with both `@timestamp` and `severity` passes through untouched.",
    "LoggingSpec.file": "Also append tenant and managed-process output to this file (not "
    "navigator's own lines, not the access log); `{{app}}` is replaced by the process name.",
    "LoggingSpec.vector": "Vector socket.",
    "LoggingSpec.access_log": "Same as `server.access_log` (on/off or a file path); wins "
                              "over it when set.",
    "VectorSpec.enabled": "Send to Vector.",
    "VectorSpec.socket": "Unix socket path.",
    "VectorSpec.config": "Vector config file.",
    "StampsSpec.dns_servers": "`host:port` resolvers for `.internal` names; empty: the "
    "system resolver.",
    "StampsSpec.users": "One machine per user: a name for each user, with the tenants "
    "(path globs) that are theirs and where they live. A tenant's own `region`, `machine` "
    "or `prefer_instance` wins; a tenant claimed by two users is an error.",
    "StampsSpec.machine_start": "Smarter replay: check the destination in the private "
    "network's DNS first and start it when it is not running.",
    "PlacementSpec.tenants": "Tenant paths or globs (`/showcase/*/raleigh/*`: `*` matches "
    "within one path segment).",
    "PlacementSpec.region": "The Fly region these tenants live in.",
    "PlacementSpec.machine": "The Fly machine they live on (forced; wins over region).",
    "PlacementSpec.prefer_instance": "The Fly machine they prefer (Fly falls back to any "
    "machine of the app).",
    "MachineStartSpec.enabled": "Before replaying to a machine (`machine` or "
    "`prefer_instance`), look up `<id>.vm.<app>.internal`, which answers only while it runs "
    "(answers cached for their TTL, at most 30 s; a request with the name cached pays "
    "nothing). When it does not resolve, hold the request, start the machine (`POST "
    "/v1/apps/<app>/machines/<id>/start` over the Machines API socket, one call per machine "
    "however many requests wait) and replay once DNS names it and it accepts a connection. "
    "Region targets are replayed as before (a region names no machine to start; Fly's proxy "
    "starts auto-start machines there).",
    "MachineStartSpec.timeout": "How long a request waits for the machine (duration). "
    "Empty: 30s. Then a forced `machine` gets the maintenance page (503, Retry-After), a "
    "`prefer_instance` is replayed anyway (Fly picks another machine).",
    "MachineStartSpec.backoff": "After a start call fails, no new call for this long "
    "(duration; waiting requests still watch DNS). Empty: 10s.",
    "MachineStartSpec.fly_api_socket": "The Machines API socket. Empty: "
    "`server.idle.fly_api_socket` (`/.fly/api`).",
}
