"""Run wrk and parse its `--latency` report.

Room: benchmarks, load generation. Builds the wrk command line (pinned with taskset when a
core is given), runs it with a deadline and turns its text output into a `WrkResult`.
Parsing is a pure function so it can be checked against saved output.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # → milliseconds
SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}

_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)(B|KB|MB|GB|TB) read")
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    bytes_read: int
    requests_per_second: float
    latency_ms: dict[int, float]  # percentile → milliseconds
    socket_errors: int  # connect + read + write + timeout
    non_2xx: int

    @property
    def bytes_per_second(self) -> float:
        return self.bytes_read / self.seconds if self.seconds else 0.0


class WrkError(RuntimeError):
    """wrk failed or printed something we cannot read."""


def parse(output: str) -> WrkResult:
    total = _TOTAL.search(output)
    rps = _RPS.search(output)
    if total is None or rps is None:
        raise WrkError(f"unrecognised wrk output:\n{output}")
    seconds = float(total.group(2)) * TIME_UNITS[total.group(3)] / 1e3
    latency = {int(p): float(v) * TIME_UNITS[u] for p, v, u in _PERCENTILE.findall(output)}
    errors = _SOCKET_ERRORS.search(output)
    non_2xx = _NON_2XX.search(output)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=seconds,
        bytes_read=int(float(total.group(4)) * SIZE_UNITS[total.group(5)]),
        requests_per_second=float(rps.group(1)),
        latency_ms=latency,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def command(url: str, *, connections: int, duration: float, threads: int = 1,
            headers: Sequence[str] = (), core: int | None = None,
            timeout: float = 10.0) -> list[str]:
    argv = ["wrk", "--latency", f"-t{threads}", f"-c{connections}",
            f"-d{max(1, round(duration))}s", f"--timeout={timeout:g}s"]
    for header in headers:
        argv += ["-H", header]
    argv.append(url)
    return (["taskset", "-c", str(core)] if core is not None else []) + argv


def run(url: str, *, connections: int, duration: float, headers: Sequence[str] = (),
        core: int | None = None) -> WrkResult:
    argv = command(url, connections=connections, duration=duration, headers=headers,
                   core=core)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=duration + 30)
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish: {' '.join(argv)}") from exc
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}: {done.stderr.strip() or done.stdout}")
    result = parse(done.stdout)
    if result.requests == 0 and result.bytes_read == 0:
        raise WrkError(f"no requests completed ({result.socket_errors} socket errors)")
    return result
