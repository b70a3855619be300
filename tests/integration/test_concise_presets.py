"""The node preset with a real Node.js tenant, from a concise config that names nothing but
the preset, the app's directory and the tenants: `node server.js` gets its port in $PORT,
the path without its prefix (which arrives as X-Forwarded-Prefix), NODE_ENV=production, and
its `Path=/` cookie comes back scoped to the tenant. (Django and FastAPI on their presets run
in test_example_django.py and test_example_fastapi.py.)"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from tests.helpers import request, run_navigator, write_config

pytestmark = pytest.mark.timeout(90)

SERVER_JS = """\
const http = require("http");
http.createServer((req, res) => {
  res.setHeader("Set-Cookie", "sid=" + process.env.TENANT + "; Path=/");
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({url: req.url, prefix: req.headers["x-forwarded-prefix"] || null,
                          env: process.env.NODE_ENV, tenant: process.env.TENANT}));
}).listen(Number(process.env.PORT), "127.0.0.1");
"""


def test_node_preset_runs_a_node_tenant(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    app = tmp_path / "app"
    app.mkdir()
    (app / "server.js").write_text(SERVER_JS)
    config = write_config(tmp_path, f"""\
version: 2
listen: "127.0.0.1:0"
server: {{pid_file: {tmp_path}/nav.pid}}
app:
  preset: node
  dir: {app}
  pools: {{start_port: {random.randrange(20000, 32000, 101)}}}
  env: {{TENANT: "${{tenant}}"}}
tenants:
  pattern: /shop/{{tenant}}/
  list: [a, b]
""")
    with run_navigator(config) as nav:
        answer = request(nav.port, "GET", "/shop/a/hello?x=1", timeout=30)
        assert answer.status == 200, (answer.body, nav.output()[-2000:])
        assert json.loads(answer.body) == {"url": "/hello?x=1", "prefix": "/shop/a",
                                           "env": "production", "tenant": "a"}
        assert answer.header("set-cookie") == "sid=a; Path=/shop/a"
        other = request(nav.port, "GET", "/shop/b/", timeout=30)
        assert json.loads(other.body)["tenant"] == "b"
        assert other.header("set-cookie") == "sid=b; Path=/shop/b"
