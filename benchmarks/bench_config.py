"""Config load time for a large file: 1,000 tenants, median of 5 `load_config` calls.

Room: benchmarks (config). Run as `python benchmarks/bench_config.py [--json]`; `run()`
returns `{"config_load_1000_tenants_ms": ..., "config_load_1000_tenants_first_ms": ...}`;
`run.py` runs it in a fresh process on the proxy core for the `config` row. Target: ≤ 200 ms.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from navigator.config.loader import load_config

TENANTS = 1000
ROUNDS = 5


def generate(tenants: int = TENANTS) -> str:
    """A showcase-like file: env template with per-tenant vars, rules, proxies, hooks."""
    lines = [
        "server:",
        "  listen: 3000",
        "  root_path: /showcase",
        "  static: {public_dir: public, try_files: [index.html, .html]}",
        "  idle: {action: suspend, timeout: 20m}",
        "auth:",
        "  enabled: true",
        "  realm: Showcase",
        "  htpasswd: db/htpasswd",
        "  public_paths: [/showcase/assets/, '*.css', '*.js']",
        "routes:",
        "  redirects:",
        "    - {from: '^/$', to: /showcase/}",
        "  rewrites:",
        "    - {from: '^/showcase/(\\d+)/index$', to: '/showcase/$1/'}",
        "  reverse_proxies:",
        "    - {name: api, prefix: /api/, target: 'http://127.0.0.1:9000', strip_path: true}",
        "  fly:",
        "    replay:",
        "      - {path: '^/showcase/2025/(sydney|melbourne)/', region: syd}",
        "applications:",
        "  pools: {timeout: 5m, start_port: 4000, default_memory_limit: 512M}",
        "  health_check: /up",
        "  env:",
        "    RAILS_APP_DB: '${database}'",
        "    RAILS_APP_OWNER: '${owner}'",
        "    RAILS_STORAGE: '/data/storage/${database}'",
        "    RAILS_RELATIVE_URL_ROOT: /showcase",
        "    SECRET: '${SECRET_KEY_BASE:-dev}'",
        "  tenants:",
    ]
    for index in range(tenants):
        year, site = 2000 + index % 25, f"site{index}"
        lines += [
            f"    - path: /showcase/{year}/{site}/",
            f"      var: {{database: {year}-{site}, owner: 'Owner {index}'}}",
            "      env: {RAILS_LOG_LEVEL: info}",
        ]
    lines += [
        "hooks:",
        "  server:",
        "    ready: [{command: bin/prepare, timeout: 2m}]",
        "  tenant:",
        "    stop: [{command: bin/backup, args: ['--tenant']}]",
        "logging: {format: json}",
    ]
    return "\n".join(lines) + "\n"


def run() -> dict[str, float]:
    """Median of ROUNDS loads (what a reload pays) and the first load of the process (what a
    starting server pays: cold regex and string caches), in milliseconds."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "navigator.yml"
        path.write_text(generate())
        environ = {"SECRET_KEY_BASE": "s3cret", "FLY_APP_NAME": "showcase"}
        start = time.perf_counter()
        config = load_config(path, environ, cwd=Path(tmp))
        first = (time.perf_counter() - start) * 1000
        assert len(config.tenants) == TENANTS
        times = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            load_config(path, environ, cwd=Path(tmp))
            times.append((time.perf_counter() - start) * 1000)
    return {"config_load_1000_tenants_ms": round(statistics.median(times), 1),
            "config_load_1000_tenants_first_ms": round(first, 1)}


if __name__ == "__main__":
    figures = run()
    if "--json" in sys.argv[1:]:
        print(json.dumps(figures))
    else:
        print(f"config load, {TENANTS} tenants: {figures['config_load_1000_tenants_ms']} ms "
              f"(median of {ROUNDS}; first load {figures['config_load_1000_tenants_first_ms']} "
              "ms; target <= 200 ms)")
