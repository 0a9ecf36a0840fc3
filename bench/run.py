"""Benchmark driver: the gateway against a direct baseline, on pinned cores, in one run.

    uv run python bench/run.py                      # every scenario, 3 runs, medians
    uv run python bench/run.py --quick              # every scenario once, short (~1 min)
    uv run python bench/run.py --scenarios tput50 --runs 1 --profile

For each scenario and run it starts a fresh fake OpenRouter (``python -m
aura_agent.testing.fake_openrouter``) and load generator (``bench/loadgen.py``) pinned to the load
core (1), measures the load generator against the fake directly (the baseline), then starts
``aura-agent serve`` pinned to the gateway core (0) in front of the same fake and measures again.
Gateway CPU time (user+sys, whole process tree, from ``/proc/<pid>/stat``) is sampled when the
load generator's measured phase starts and ends; memory from ``/proc/<pid>/status`` (VmHWM, VmRSS).
Prints a Markdown table of the medians and writes every raw number to
``bench/results/latest.json``. Every process it starts is in its own session and is stopped on
exit, error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LOADGEN = BENCH_DIR / "loadgen.py"
FAKE = BENCH_DIR / "fake_upstream.py"  # the fake OpenRouter's CLI with a larger listen backlog
MEASURE_MARKER = "LOADGEN_MEASURING"  # bench/loadgen.py prints it on stderr
FAKE_READY = "FAKE_OPENROUTER_READY"
API_KEY = "bench-internal-key"
TOKEN_TEXT = "tok "  # noqa: S105 - not a secret
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    clients: int
    tokens: int
    token_delay_ms: float
    requests: int
    """Cap on streams in the measured phase (per side)."""
    duration: float
    """Cap in seconds on the measured phase: no new stream starts after it (per side)."""
    timeout: float
    """Cap in seconds on one stream."""
    warmup_requests: int
    warmup_seconds: float
    warmup_clients: int | None = None


FULL: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario("ttft1", "1 client, 64 tokens back to back", 1, 64, 0, 3000, 4.0, 10, 200, 1.0),
        Scenario(
            "tput50", "50 clients, 64 tokens back to back", 50, 64, 0, 10**6, 4.0, 20, 10**5, 1.0
        ),
        Scenario(
            "paced200", "200 clients, 20 ms between tokens", 200, 64, 20, 10**5, 4.0, 20, 10**5, 1.0
        ),
        Scenario(
            "slow1000",
            "1,000 slow streams, 100 ms between tokens",
            1000,
            50,
            100,
            1000,
            6.0,
            12,
            200,
            0.5,
            50,
        ),
        Scenario(
            "workers", "N workers, 50 clients back to back", 50, 64, 0, 10**6, 4.0, 20, 10**5, 1.0
        ),
    )
}
QUICK: dict[str, Scenario] = {
    "ttft1": replace(
        FULL["ttft1"], requests=500, duration=1.5, warmup_requests=50, warmup_seconds=0.5
    ),
    "tput50": replace(FULL["tput50"], duration=1.5, warmup_seconds=0.5),
    "paced200": replace(FULL["paced200"], tokens=32, duration=1.5, warmup_seconds=0.5),
    "slow1000": replace(FULL["slow1000"], tokens=20, duration=3.0, timeout=8, warmup_seconds=0.3),
    "workers": replace(FULL["workers"], duration=1.5, warmup_seconds=0.5),
}


# -- processes ---------------------------------------------------------------------------------


class Processes:
    """Every child this driver starts, each in its own session (process group), stopped at exit."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        argv: Sequence[str],
        *,
        cpus: set[int] | None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
    ) -> subprocess.Popen[bytes]:
        def pin() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)

        proc = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=pin,
        )
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        """SIGTERM the child's process group, SIGKILL it after ``grace`` seconds."""
        family = [p for p in process_tree(proc.pid) if p != proc.pid] if proc.poll() is None else []
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # Workers of a multi-process gateway: none may outlive its parent. Only the pids we saw
        # in the child's tree and that are still in its process group.
        for pid in family:
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == proc.pid:
                    os.kill(pid, signal.SIGKILL)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc, grace=5.0)


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def read_until(
    proc: subprocess.Popen[bytes], stream: IO[bytes], needle: str, timeout: float
) -> str:
    """Read ``stream`` until a line containing ``needle``; that line. Raises on exit/timeout."""
    fd = stream.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    want = needle.encode()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no {needle!r} within {timeout:g} s; got {buf[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if not ready:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited ({proc.returncode}) before {needle!r}")
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            raise RuntimeError(f"process closed its output before {needle!r}: {buf[-2000:]!r}")
        buf += chunk
        for line in buf.split(b"\n"):
            if want in line:
                return line.decode(errors="replace").strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- /proc sampling ----------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants (by scanning /proc/*/stat for parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def cpu_times(pids: Iterable[int]) -> tuple[float, float]:
    """(user, sys) CPU seconds of ``pids`` (fields 14 and 15 of /proc/<pid>/stat)."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pids: Iterable[int]) -> float:
    """user+sys CPU seconds of ``pids``."""
    return sum(cpu_times(pids))


def memory_kb(pids: Iterable[int]) -> dict[str, int]:
    """Summed VmHWM (peak RSS) and VmRSS of ``pids``, in kB."""
    out = {"VmHWM": 0, "VmRSS": 0}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in out:
                        out[key] += int(value.split()[0])
        except OSError:
            continue
    return out


_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_cpu_seconds() -> dict[str, float]:
    """The machine's CPU seconds by kind (user, system, irq, softirq, ...) from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    return {name: v / CLK_TCK for name, v in zip(_STAT_FIELDS, values, strict=False)}


def source_fingerprint() -> str:
    """A hash of the gateway's source (``src/aura_agent``): it is edited while benchmarks run."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted((ROOT / "src" / "aura_agent").rglob("*.py")):
        with contextlib.suppress(OSError):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def tcp_counters() -> dict[str, int]:
    """System-wide TCP counters that reveal dropped connection attempts (full accept queues)."""
    wanted = ("ListenOverflows", "ListenDrops", "TCPTimeouts", "TCPSynRetrans")
    out: dict[str, int] = {}
    with contextlib.suppress(OSError), open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        names, numbers = header.split(), values.split()
        if names and names[0] == "TcpExt:":
            out.update((n, int(v)) for n, v in zip(names, numbers, strict=False) if n in wanted)
    return out


# -- running one side --------------------------------------------------------------------------


@dataclass
class Placement:
    gateway: set[int] | None
    load: set[int] | None

    def describe(self, gateway: set[int] | None = None) -> str:
        def cores(c: set[int] | None) -> str:
            return ",".join(map(str, sorted(c))) if c else "any"

        gw = gateway if gateway is not None else self.gateway
        return (
            f"gateway on core(s) {cores(gw)}; fake upstream + load generator on {cores(self.load)}"
        )


class Bench:
    def __init__(self, args: argparse.Namespace, procs: Processes, placement: Placement) -> None:
        self.args = args
        self.procs = procs
        self.placement = placement
        self.logs = RESULTS_DIR / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        venv_bin = Path(sys.executable).parent
        gateway = venv_bin / "aura-agent"
        self.gateway_argv = (
            [str(gateway)] if gateway.exists() else [sys.executable, "-m", "aura_agent"]
        )

    def start_fake(self, sc: Scenario, tag: str) -> tuple[subprocess.Popen[bytes], str]:
        argv = [
            sys.executable, str(FAKE),
            "--port", "0",
            "--tokens", str(sc.tokens),
            "--token-text", TOKEN_TEXT,
            "--token-delay-ms", str(sc.token_delay_ms),
        ]  # fmt: skip
        log = open(self.logs / f"{tag}-fake.log", "wb")  # noqa: SIM115 - the child owns it
        with log:
            proc = self.procs.start(
                argv, cpus=self.placement.load, stdout=subprocess.PIPE, stderr=log
            )
        assert proc.stdout is not None
        line = read_until(proc, proc.stdout, FAKE_READY, 20)
        return proc, line.split()[-1]

    def server_argv(self, port: int, workers: int) -> list[str]:
        """`aura-agent serve` (uvicorn), or the same app under granian (`--server granian`, an
        experiment: granian is not a dependency, `uv pip install granian` first)."""
        if self.args.server == "granian":
            granian = Path(sys.executable).parent / "granian"
            return [
                str(granian), "--interface", "asgi", "--loop", "uvloop", "--http", "1",
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                "--no-ws", "--factory", "aura_agent.app:create_app",
            ]  # fmt: skip
        return [*self.gateway_argv, "serve", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers)]  # fmt: skip

    def start_gateway(
        self, fake_url: str, tag: str, *, workers: int = 1, cpus: set[int] | None
    ) -> tuple[subprocess.Popen[bytes], str, Path]:
        port = free_port()
        env = gateway_env(fake_url, self.args)
        env["WEB_CONCURRENCY"] = str(workers)
        log_path = self.logs / f"{tag}-gateway.log"
        with open(log_path, "wb") as log:
            proc = self.procs.start(
                self.server_argv(port, workers),
                cpus=cpus, env=env, cwd=self.logs, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_healthy(proc, f"http://127.0.0.1:{port}/health", log_path, 60)
        if workers > 1:  # /health answers once one worker is up: wait for the others to exist
            deadline = time.monotonic() + 20
            while len(process_tree(proc.pid)) < workers + 1 and time.monotonic() < deadline:
                time.sleep(0.1)
        wait_idle(proc.pid, 20)  # ... and for every worker to finish importing and starting
        path = "/v1/chat/completions" if self.args.endpoint == "openai" else "/chat"
        return proc, f"http://127.0.0.1:{port}{path}", log_path

    def loadgen_argv(self, sc: Scenario, mode: str, url: str) -> list[str]:
        argv = [
            sys.executable, str(LOADGEN),
            "--mode", mode, "--url", url,
            "--concurrency", str(sc.clients),
            "--requests", str(sc.requests),
            "--duration", str(sc.duration),
            "--timeout", str(sc.timeout),
            "--expected-tokens", str(sc.tokens),
            "--warmup-requests", str(sc.warmup_requests),
            "--warmup-seconds", str(sc.warmup_seconds),
            "--marker",
        ]  # fmt: skip
        if sc.warmup_clients:
            argv += ["--warmup-concurrency", str(sc.warmup_clients)]
        if mode in ("chat", "openai"):
            argv += ["--api-key", API_KEY]
        if self.args.stagger:
            argv += ["--stagger", str(self.args.stagger)]
        return argv

    def load(
        self,
        sc: Scenario,
        mode: str,
        url: str,
        watch: int | None = None,
        on_measure: Callable[[], None] | None = None,
        fake_pid: int | None = None,
    ) -> dict[str, Any]:
        """Run the load generator; with ``watch``, sample that process tree's CPU and memory.

        ``fake_pid``'s CPU is sampled too: with the load generator's own, it tells whether the
        load core was saturated (then the numbers measure the load core, not the gateway).
        """
        idle_rss_kb = memory_kb(process_tree(watch))["VmRSS"] if watch else 0
        tcp0 = tcp_counters()
        lg = self.procs.start(
            self.loadgen_argv(sc, mode, url),
            cpus=self.placement.load,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert lg.stdout is not None
            assert lg.stderr is not None
            connect_cap = 30 + sc.clients / 50
            read_until(lg, lg.stderr, MEASURE_MARKER, connect_cap + sc.warmup_seconds + sc.timeout)
            t0 = time.monotonic()
            pids = process_tree(watch) if watch else []
            cpu0 = cpu_seconds(pids)
            sys0 = cpu_times(pids)[1]
            per_pid0 = {pid: cpu_seconds([pid]) for pid in pids}
            fake_cpu0 = cpu_seconds([fake_pid]) if fake_pid else 0.0
            machine0 = machine_cpu_seconds()
            if on_measure is not None:
                on_measure()
            peak_rss = 0
            cap = sc.duration + sc.timeout + 15
            while lg.poll() is None:
                if watch:
                    peak_rss = max(peak_rss, memory_kb(pids)["VmRSS"])
                if time.monotonic() - t0 > cap:
                    raise TimeoutError(f"load generator still running after {cap:g} s")
                with contextlib.suppress(subprocess.TimeoutExpired):
                    lg.wait(0.2)
            wall = time.monotonic() - t0
            fake_cpu = cpu_seconds([fake_pid]) - fake_cpu0 if fake_pid else None
            machine1 = machine_cpu_seconds()
            machine = {k: machine1[k] - machine0.get(k, 0.0) for k in machine1}
            ours = (cpu_seconds(pids) - cpu0) + (fake_cpu or 0.0)
            out = lg.stdout.read()
            err = lg.stderr.read()
        finally:
            self.procs.stop(lg, grace=2)
        if lg.returncode != 0 or not out.strip():
            raise RuntimeError(f"load generator failed ({lg.returncode}): {err[-2000:]!r}")
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        ours += result.get("loadgen_cpu_s") or 0.0
        if wall > 0:
            # Process time of whatever else ran meanwhile (tests of other sessions, the driver):
            # tick-based, so +-0.05 is noise; much more means the numbers are disturbed. Interrupt
            # time (loopback TCP is processed in softirq) is charged to no process: kept apart.
            processes = machine["user"] + machine["nice"] + machine["system"]
            result["foreign_cpu_util"] = round(max(processes - ours, 0.0) / wall, 3)
            result["machine_cpu_util"] = {k: round(v / wall, 3) for k, v in machine.items()}
        tcp1 = tcp_counters()
        result["tcp"] = {k: tcp1[k] - tcp0.get(k, 0) for k in tcp1}  # system-wide, whole run
        if fake_cpu is not None and wall > 0:
            result["fake_cpu_util"] = round(fake_cpu / wall, 3)
            result["load_core_util"] = round(
                result["fake_cpu_util"] + (result.get("loadgen_cpu_util") or 0.0), 3
            )
        if watch:
            cpu = cpu_seconds(pids) - cpu0
            system = cpu_times(pids)[1] - sys0
            mem = memory_kb(pids)
            concurrency = min(sc.clients, max(result["attempts"], 1))
            result["gateway"] = {
                "processes": len(pids),
                "cpu_ms_per_process": [
                    round((cpu_seconds([pid]) - before) * 1000, 1)
                    for pid, before in per_pid0.items()
                ],
                "cpu_ms": round(cpu * 1000, 1),
                "cpu_sys_ms": round(system * 1000, 1),
                "cpu_util": round(cpu / wall, 3) if wall > 0 else None,
                "cpu_ms_per_1k_tokens": round(cpu * 1e6 / result["tokens"], 3)
                if result["tokens"]
                else None,
                "peak_rss_mb": round(mem["VmHWM"] / 1024, 1),
                "rss_mb_end": round(mem["VmRSS"] / 1024, 1),
                "rss_mb_max_sampled": round(peak_rss / 1024, 1),
                "rss_mb_idle": round(idle_rss_kb / 1024, 1),
                "kb_per_stream": round((mem["VmHWM"] - idle_rss_kb) / concurrency, 1),
            }
        return result

    def scenario(self, sc: Scenario, run: int) -> dict[str, Any]:
        tag = f"{sc.key}-run{run}"
        record: dict[str, Any] = {
            "scenario": sc.key,
            "run": run,
            "config": asdict(sc),
            "source": source_fingerprint(),
        }
        fake, fake_url = self.start_fake(sc, tag)
        try:
            record["direct"] = self.load(sc, "upstream", fake_url, fake_pid=fake.pid)
            if sc.key == "workers":
                record["placement"] = self.placement.describe(gateway=set())
                for w in self.args.workers:
                    record[f"gateway_w{w}"] = self.gateway_side(
                        sc, fake_url, f"{tag}-w{w}", workers=w, cpus=None, fake_pid=fake.pid
                    )
            else:
                record["placement"] = self.placement.describe()
                record["gateway"] = self.gateway_side(
                    sc, fake_url, tag, workers=1, cpus=self.placement.gateway, fake_pid=fake.pid
                )
        finally:
            self.procs.stop(fake)
        return record

    def gateway_side(
        self,
        sc: Scenario,
        fake_url: str,
        tag: str,
        *,
        workers: int,
        cpus: set[int] | None,
        fake_pid: int | None = None,
    ) -> dict[str, Any]:
        gw, url, log_path = self.start_gateway(fake_url, tag, workers=workers, cpus=cpus)
        try:
            result = self.load(sc, self.args.endpoint, url, watch=gw.pid, fake_pid=fake_pid)
        finally:
            self.procs.stop(gw)
        result["gateway"]["workers"] = workers
        result["gateway"]["log"] = log_summary(log_path)
        return result


BENCH_MODEL = "bench/model"


def gateway_env(fake_url: str, args: argparse.Namespace) -> dict[str, str]:
    """The environment minus every Aura setting, plus the benchmark's own settings."""
    import msgspec

    from aura_agent.config import Settings

    names = {f.encode_name for f in msgspec.structs.fields(Settings)} | {"WEB_CONCURRENCY"}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(
        AURA_ENV="production",
        LLM_PROVIDER="openrouter",
        OPENROUTER_API_KEY="bench-upstream-key",
        OPENROUTER_API_URL=fake_url,
        INTERNAL_API_KEY=API_KEY,
        SESSION_STORE="memory",
        MODEL_NAME=BENCH_MODEL,  # the route /v1 requests name (loadgen's default `--model`)
        LOG_LEVEL=args.log_level,
        LOG_FORMAT="json",
    )
    if args.keepalive_seconds is not None:
        env["KEEPALIVE_SECONDS"] = str(args.keepalive_seconds)
    if args.upstream_transport:
        env["UPSTREAM_TRANSPORT"] = args.upstream_transport
    return env


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"gateway exited ({proc.returncode}) at startup:\n{tail}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            opener.open(url, timeout=1) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"gateway not healthy within {timeout:g} s ({url})")


def wait_idle(root: int, timeout: float, window: float = 0.5, busy_ms: float = 25) -> bool:
    """Wait until ``root``'s process tree used under ``busy_ms`` of CPU during ``window`` s."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(process_tree(root))
    while time.monotonic() < deadline:
        time.sleep(window)
        now = cpu_seconds(process_tree(root))
        if (now - before) * 1000 < busy_ms:
            return True
        before = now
    return False


def log_summary(path: Path) -> dict[str, Any]:
    """Log lines by level (JSON logs; other lines counted as "other")."""
    levels: Counter[str] = Counter()
    first_error = None
    with contextlib.suppress(OSError), open(path, errors="replace") as f:
        for line in f:
            try:
                level = str(json.loads(line).get("level", "other"))
            except (ValueError, AttributeError):
                level = "other"
            levels[level] += 1
            if first_error is None and level in ("error", "critical", "other"):
                first_error = line.strip()[:300]
    return {"lines": dict(levels), "first_error": first_error}


# -- metrics, medians and the table ------------------------------------------------------------


def _get(d: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def flat_metrics(record: dict[str, Any]) -> dict[str, float | None]:
    """The numbers of one scenario run, under flat keys (``direct.ttft_p50_ms`` ...)."""
    out: dict[str, float | None] = {}
    sides = [("direct", record.get("direct"))] + [
        (k, v) for k, v in record.items() if k.startswith("gateway") and isinstance(v, dict)
    ]
    for side, r in sides:
        if r is None:
            continue
        out[f"{side}.ttft_p50_ms"] = _get(r, "ttft_ms", "p50")
        out[f"{side}.ttft_p99_ms"] = _get(r, "ttft_ms", "p99")
        out[f"{side}.total_p50_ms"] = _get(r, "total_ms", "p50")
        out[f"{side}.streams_per_s"] = r.get("streams_per_s")
        out[f"{side}.tokens_per_s"] = r.get("tokens_per_s")
        out[f"{side}.streams"] = r.get("streams")
        out[f"{side}.failures"] = r.get("failures")
        out[f"{side}.total_p99_ms"] = _get(r, "total_ms", "p99")
        out[f"{side}.load_core_util"] = r.get("load_core_util")
        out[f"{side}.foreign_cpu_util"] = r.get("foreign_cpu_util")
        for key in (
            "cpu_ms_per_1k_tokens",
            "cpu_util",
            "peak_rss_mb",
            "rss_mb_end",
            "rss_mb_idle",
            "kb_per_stream",
        ):
            if (value := _get(r, "gateway", key)) is not None:
                out[f"{side}.{key}"] = value
    return out


def median_metrics(runs: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    """Per key, the median of the runs that have a number (None when none has)."""
    keys: list[str] = []
    for run in runs:
        keys.extend(k for k in run if k not in keys)
    out: dict[str, float | None] = {}
    for key in keys:
        values = [v for run in runs if (v := run.get(key)) is not None]
        if not values:
            out[key] = None
        elif key.endswith(".failures"):  # a failure in any run counts: the sum, not the median
            out[key] = sum(values)
        else:
            out[key] = statistics.median(values)
    return out


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        text = (
            f"{value:.2f}"
            if abs(value) < 10
            else f"{value:.1f}"
            if abs(value) < 100
            else f"{value:.0f}"
        )
    else:
        text = f"{int(value)}"
    return f"{text}{unit}"


def added(direct: float | None, gateway: float | None, unit: str = " ms") -> str:
    if direct is None or gateway is None:
        return "—"
    return (
        f"+{fmt(gateway - direct, unit)}"
        if gateway >= direct
        else f"-{fmt(direct - gateway, unit)}"
    )


def ratio(direct: float | None, gateway: float | None) -> str:
    if not direct or gateway is None:
        return "—"
    return f"x{gateway / direct:.3f}" if gateway / direct < 0.1 else f"x{gateway / direct:.2f}"


def table_rows(
    medians: dict[str, dict[str, float | None]], workers: Sequence[int]
) -> list[list[str]]:
    """Rows (scenario, metric, direct, gateway, ratio/added) for the scenarios present."""
    rows: list[list[str]] = []

    def row(
        title: str, metric: str, d: float | None, g: float | None, cmp: str, unit: str = ""
    ) -> None:
        rows.append([title, metric, fmt(d, unit), fmt(g, unit), cmp])

    if (m := medians.get("ttft1")) is not None:
        t = "1 client, 64 tok back to back"
        for p in ("p50", "p99"):
            d, g = m.get(f"direct.ttft_{p}_ms"), m.get(f"gateway.ttft_{p}_ms")
            row(t, f"TTFT {p}", d, g, added(d, g), " ms")
        d, g = m.get("direct.total_p50_ms"), m.get("gateway.total_p50_ms")
        row(t, "stream time p50", d, g, added(d, g), " ms")
    if (m := medians.get("tput50")) is not None:
        t = "50 clients, 64 tok back to back"
        d, g = m.get("direct.streams_per_s"), m.get("gateway.streams_per_s")
        row(t, "streams/s", d, g, ratio(d, g))
        row(t, "failures (all runs)", m.get("direct.failures"), m.get("gateway.failures"), "")
        row(t, "gateway CPU ms / 1k tokens", None, m.get("gateway.cpu_ms_per_1k_tokens"), "")
        row(t, "gateway CPU use", None, m.get("gateway.cpu_util"), "(1.0 = one core)")
        d, g = m.get("direct.load_core_util"), m.get("gateway.load_core_util")
        row(t, "load core use (fake + loadgen)", d, g, "")
    if (m := medians.get("paced200")) is not None:
        t = "200 clients, 20 ms/token"
        for p in ("p50", "p99"):
            d, g = m.get(f"direct.ttft_{p}_ms"), m.get(f"gateway.ttft_{p}_ms")
            row(t, f"TTFT {p}", d, g, added(d, g), " ms")
        for p in ("p50", "p99"):
            d, g = m.get(f"direct.total_{p}_ms"), m.get(f"gateway.total_{p}_ms")
            row(t, f"stream time {p}", d, g, added(d, g), " ms")
        row(t, "failures (all runs)", m.get("direct.failures"), m.get("gateway.failures"), "")
        row(t, "gateway CPU ms / 1k tokens", None, m.get("gateway.cpu_ms_per_1k_tokens"), "")
        row(t, "gateway CPU use", None, m.get("gateway.cpu_util"), "(1.0 = one core)")
    if (m := medians.get("slow1000")) is not None:
        t = "1,000 slow streams, 100 ms/token"
        row(t, "failures (all runs)", m.get("direct.failures"), m.get("gateway.failures"), "")
        row(t, "streams completed", m.get("direct.streams"), m.get("gateway.streams"), "")
        for p in ("p50", "p99"):
            d, g = m.get(f"direct.ttft_{p}_ms"), m.get(f"gateway.ttft_{p}_ms")
            row(t, f"TTFT {p}", d, g, added(d, g), " ms")
        for p in ("p50", "p99"):
            d, g = m.get(f"direct.total_{p}_ms"), m.get(f"gateway.total_{p}_ms")
            row(t, f"stream time {p}", d, g, added(d, g), " ms")
        row(t, "gateway RSS before load", None, m.get("gateway.rss_mb_idle"), "", " MB")
        row(t, "gateway peak RSS (VmHWM)", None, m.get("gateway.peak_rss_mb"), "", " MB")
        row(t, "gateway RSS after the streams", None, m.get("gateway.rss_mb_end"), "", " MB")
        row(t, "(peak - before) per stream", None, m.get("gateway.kb_per_stream"), "", " kB")
        row(t, "gateway CPU ms / 1k tokens", None, m.get("gateway.cpu_ms_per_1k_tokens"), "")
    if (m := medians.get("workers")) is not None:
        base = m.get("gateway_w1.streams_per_s")
        d = m.get("direct.streams_per_s")
        for w in workers:
            g = m.get(f"gateway_w{w}.streams_per_s")
            cmp = ratio(d, g)
            if w != 1 and base and g is not None:
                cmp += f"; x{g / base:.2f} vs 1 worker"
            t = f"{w} worker(s), 50 clients (unpinned)"
            row(t, "streams/s", d, g, cmp)
            row(t, "gateway CPU use", None, m.get(f"gateway_w{w}.cpu_util"), "(2.0 = both cores)")
            cpu = m.get(f"gateway_w{w}.cpu_ms_per_1k_tokens")
            row(t, "gateway CPU ms / 1k tokens", None, cpu, "")
            f = m.get(f"gateway_w{w}.failures")
            if f:
                row(t, "failures (all runs)", None, f, "")
    return rows


def disturbance_warnings(runs: Sequence[dict[str, Any]], limit: float = 0.15) -> list[str]:
    """Measurements during which other processes used CPU, and gateway source changes."""
    out = []
    for record in runs:
        for side, r in record.items():
            if not isinstance(r, dict) or "attempts" not in r:
                continue
            foreign = r.get("foreign_cpu_util")
            if foreign is not None and foreign > limit:
                out.append(
                    f"{record['scenario']} run {record['run']} {side}: other processes used "
                    f"{foreign:.2f} core(s) meanwhile"
                )
    sources = sorted({r["source"] for r in runs if "source" in r})
    if len(sources) > 1:
        out.append(f"the gateway source changed during the benchmark ({', '.join(sources)})")
    return out


def load_warnings(medians: dict[str, dict[str, float | None]], limit: float = 0.9) -> list[str]:
    """Gateway measurements during which the load core was (nearly) saturated."""
    out = []
    for key, m in medians.items():
        for name, value in m.items():
            side, _, metric = name.partition(".")
            if metric == "load_core_util" and side != "direct" and value and value > limit:
                out.append(
                    f"{key}/{side}: the load core was {value:.0%} busy (fake + load generator); "
                    "the gateway numbers may be limited by the load side"
                )
    return out


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |"]
    lines.append("|" + "|".join(" --- " for _ in headers) + "|")
    lines.extend("| " + " | ".join(esc(c) for c in r) + " |" for r in rows)
    return "\n".join(lines)


TABLE_HEADERS = ("scenario", "metric", "direct", "gateway", "ratio / added")


# -- machine -----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in ("litestar", "uvicorn", "uvloop", "httptools", "httpx", "httpcore", "msgspec"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    git: dict[str, Any] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            check=False, timeout=5,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
            check=False, timeout=5,
        ).stdout  # fmt: skip
        git["dirty_files"] = len(status.splitlines())
    return {
        "nproc": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "packages": versions,
        "git": git,
    }


# -- profiling ---------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def short_path(filename: str) -> str:
    """``httpx/_client.py``, ``aura_agent/http/sse.py``, ``asyncio/tasks.py`` from full paths."""
    path = filename.replace("\\", "/")
    for anchor in ("site-packages/", "/src/"):
        if anchor in path:
            return path.rsplit(anchor, 1)[1]
    match = re.search(r"/python3\.\d+/(?P<rest>.+)$", path)
    if match:
        return match.group("rest")
    return path


def frame_package(filename: str) -> str:
    """A coarse owner for a source file: the installed package, ``aura_agent`` or ``stdlib:x``."""
    path = filename.replace("\\", "/")
    if "aura_agent/" in path:
        return "aura_agent"
    if "site-packages/" in path:
        return path.rsplit("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    match = re.search(r"/python3\.\d+/(?P<mod>[^/]+)", path)
    if match:
        return "stdlib:" + match.group("mod").removesuffix(".py")
    if path.startswith("<"):
        return "stdlib:" + path.strip("<>").split()[-1]
    return path.rsplit("/", 1)[-1] or "?"


def summarize_collapsed(text: str, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample counts per function from py-spy's collapsed (``raw``) stacks."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    pkg_self: Counter[str] = Counter()
    pkg_incl: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        names: list[str] = []
        pkgs: list[str] = []
        for raw in stack.split(";"):
            match = _FRAME.match(raw.strip())
            if match:
                file = match.group("file")
                names.append(f"{match.group('func')} ({short_path(file)})")
                pkgs.append(frame_package(file))
            else:
                names.append(raw.strip())
                pkgs.append("native" if raw.strip() else "?")
        if not names:
            continue
        self_counts[names[-1]] += count
        pkg_self[pkgs[-1]] += count
        for name in set(names):
            incl_counts[name] += count
        for pkg in set(pkgs):
            pkg_incl[pkg] += count

    def pct(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [
            {"frame": k, "samples": v, "pct": round(100 * v / total, 1) if total else 0.0}
            for k, v in counter.most_common(n)
        ]

    # Frames on (nearly) every stack are the entry points (main, Server.run, Runner.run): noise.
    everywhere = {k for k, v in incl_counts.items() if total and v >= 0.99 * total}
    for key in everywhere:
        del incl_counts[key]
    return {
        "samples": total,
        "top_self": pct(self_counts, top),
        "top_inclusive": pct(incl_counts, top),
        "on_every_stack": sorted(everywhere),
        "packages_self": pct(pkg_self, 30),
        "packages_inclusive": pct(pkg_incl, 30),
    }


def find_py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def profile_gateway(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """One scenario (tput50 by default) once more with py-spy attached to the pinned gateway."""
    spy = find_py_spy()
    if spy is None:
        return {"error": "py-spy not found (uv pip install py-spy)"}
    base = (QUICK if args.quick else FULL)[args.profile_scenario]
    sc = replace(base, duration=args.profile_seconds + 2, requests=10**6)
    tag = f"profile-{sc.key}"
    raw_path = RESULTS_DIR / f"{tag}.collapsed.txt"
    svg_path = RESULTS_DIR / f"{tag}.svg"
    fake, fake_url = bench.start_fake(sc, tag)
    spies: list[subprocess.Popen[bytes]] = []
    try:
        gw, url, _ = bench.start_gateway(fake_url, tag, cpus=bench.placement.gateway)
        try:

            def attach() -> None:
                seconds = str(math.ceil(args.profile_seconds))
                common = ["--pid", str(gw.pid), "--duration", seconds, "--rate",
                          str(args.profile_rate), "--gil", "--full-filenames"]  # fmt: skip
                if args.profile_native:
                    common.append("--native")
                for fmt_, path in (("raw", raw_path), ("flamegraph", svg_path)):
                    with open(RESULTS_DIR / "logs" / f"{tag}-py-spy-{fmt_}.log", "wb") as log:
                        spies.append(
                            bench.procs.start(
                                [spy, "record", *common, "--format", fmt_, "-o", str(path)],
                                cpus=bench.placement.load,
                                stdout=log,
                                stderr=subprocess.STDOUT,
                            )
                        )
                    if not args.profile_flamegraph:
                        break

            result = bench.load(sc, bench.args.endpoint, url, watch=gw.pid, on_measure=attach)
            for proc in spies:
                try:
                    proc.wait(args.profile_seconds + 30)
                except subprocess.TimeoutExpired:
                    bench.procs.stop(proc)
        finally:
            for proc in spies:
                bench.procs.stop(proc)
            bench.procs.stop(gw)
    finally:
        bench.procs.stop(fake)
    if not raw_path.exists():
        log = (RESULTS_DIR / "logs" / f"{tag}-py-spy-raw.log").read_text(errors="replace")
        return {"error": f"py-spy produced no profile: {log[-1500:]}"}
    summary = summarize_collapsed(raw_path.read_text(errors="replace"), top=args.profile_top)
    summary.update(
        scenario=sc.key,
        collapsed=str(raw_path.relative_to(ROOT)),
        flamegraph=str(svg_path.relative_to(ROOT)) if svg_path.exists() else None,
        rate_hz=args.profile_rate,
        native=args.profile_native,
        streams_per_s_while_profiling=result.get("streams_per_s"),
        gateway_cpu_util=_get(result, "gateway", "cpu_util"),
    )
    return summary


def profile_markdown(summary: dict[str, Any]) -> str:
    if "error" in summary:
        return f"Profile: {summary['error']}"
    parts = [
        f"Profile of the gateway during {summary['scenario']} "
        f"(py-spy --gil, {summary['samples']} samples at "
        f"{summary['rate_hz']} Hz{', native' if summary['native'] else ''}; "
        f"{fmt(summary['streams_per_s_while_profiling'])} streams/s while sampled)",
        "",
        markdown_table(
            ("#", "self %", "frame (leaf)"),
            [
                [str(i + 1), f"{f['pct']:.1f}", f["frame"]]
                for i, f in enumerate(summary["top_self"])
            ],
        ),
        "",
        markdown_table(
            ("#", "inclusive %", "frame"),
            [
                [str(i + 1), f"{f['pct']:.1f}", f["frame"]]
                for i, f in enumerate(summary["top_inclusive"])
            ],
        ),
        "",
        markdown_table(
            ("package", "self %", "inclusive %"),
            [
                [p["frame"], f"{p['pct']:.1f}", f"{_pkg_incl(summary, p['frame']):.1f}"]
                for p in summary["packages_self"]
            ],
        ),
    ]
    return "\n".join(parts)


def _pkg_incl(summary: dict[str, Any], pkg: str) -> float:
    return next((p["pct"] for p in summary["packages_inclusive"] if p["frame"] == pkg), 0.0)


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--scenarios", default=",".join(FULL), help=f"comma list of {', '.join(FULL)}"
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="repeats, medians reported (3; quick 1)"
    )
    parser.add_argument("--workers", default="1,2", help="WEB_CONCURRENCY values for 'workers'")
    parser.add_argument("--quick", action="store_true", help="short phases, one run")
    parser.add_argument("--gateway-cpus", default="0", help="cores for the gateway ('' = any)")
    parser.add_argument("--load-cpus", default="1", help="cores for fake + load generator")
    parser.add_argument(
        "--endpoint",
        choices=("chat", "openai"),
        default="chat",
        help="the gateway endpoint under load: POST /chat, or /v1/chat/completions (streamed)",
    )
    parser.add_argument(
        "--upstream-transport",
        choices=("httpx", "asyncio"),
        default=None,
        help="the gateway's UPSTREAM_TRANSPORT (default: the service's default)",
    )
    parser.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="spread the clients' first measured requests over this many seconds (default 0: "
        "all at once, so paced streams of equal length arrive in waves)",
    )
    parser.add_argument(
        "--server",
        choices=("uvicorn", "granian"),
        default="uvicorn",
        help="uvicorn = `aura-agent serve`; granian = the app under granian (experiment)",
    )
    parser.add_argument("--log-level", default="WARNING", help="gateway LOG_LEVEL")
    parser.add_argument("--keepalive-seconds", type=float, default=None, help="KEEPALIVE_SECONDS")
    parser.add_argument(
        "--output", type=Path, default=None, help="results/latest.json (profile-only: profile.json)"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway under tput50")
    parser.add_argument("--profile-only", action="store_true", help="only the profile pass")
    parser.add_argument("--profile-scenario", default="tput50", choices=list(FULL))
    parser.add_argument("--profile-seconds", type=float, default=8.0)
    parser.add_argument("--profile-rate", type=int, default=250, help="py-spy samples/s")
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument("--profile-native", action="store_true", help="py-spy --native")
    parser.add_argument(
        "--profile-flamegraph", action="store_true", help="also an SVG (2nd py-spy)"
    )
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenarios if s not in FULL]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {list(FULL)}")
    args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.profile_only:
        args.profile, args.scenarios = True, []
    if args.output is None:
        args.output = RESULTS_DIR / ("profile.json" if args.profile_only else "latest.json")
    return args


def _cpus(text: str) -> set[int] | None:
    return {int(c) for c in text.split(",") if c.strip()} or None


def placement_for(args: argparse.Namespace) -> tuple[Placement, str | None]:
    available = os.sched_getaffinity(0)
    gateway, load = _cpus(args.gateway_cpus), _cpus(args.load_cpus)
    if (
        len(available) < 2
        or (gateway and not gateway <= available)
        or (load and not load <= available)
    ):
        return Placement(None, None), f"cannot pin on cores {sorted(available)}: nothing pinned"
    return Placement(gateway, load), None


def run(args: argparse.Namespace) -> dict[str, Any]:
    scenarios = QUICK if args.quick else FULL
    placement, warning = placement_for(args)
    nofile = raise_nofile(20_000)
    procs = Processes()
    # Ctrl-C raises KeyboardInterrupt even when started with SIGINT ignored (a background job of
    # a script); SIGTERM and SIGHUP exit through the same `finally`, which stops every child.
    wanted = {
        signal.SIGINT: signal.default_int_handler,
        signal.SIGTERM: _raise_exit,
        signal.SIGHUP: _raise_exit,
    }
    previous = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
    if placement.load:  # the driver itself is mostly idle; keep it off the gateway's core
        os.sched_setaffinity(0, placement.load | set())
    started = time.time()
    results: dict[str, Any] = {
        "machine": machine_info(),
        "placement": placement.describe(),
        "placement_warning": warning,
        "nofile": nofile,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "runs": [],
    }
    bench = Bench(args, procs, placement)
    try:
        for run_index in range(1, args.runs + 1):
            for key in args.scenarios:
                sc = scenarios[key]
                t0 = time.monotonic()
                print(
                    f"[run {run_index}/{args.runs}] {key}: {sc.title} ...",
                    file=sys.stderr,
                    flush=True,
                )
                record = bench.scenario(sc, run_index)
                record["seconds"] = round(time.monotonic() - t0, 1)
                results["runs"].append(record)
                print(
                    f"    done in {record['seconds']} s: {_oneline(record)}",
                    file=sys.stderr,
                    flush=True,
                )
        if args.profile:
            print(f"[profile] {args.profile_scenario} with py-spy ...", file=sys.stderr, flush=True)
            results["profile"] = profile_gateway(bench, args)
    finally:
        for sig in wanted:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        procs.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    results["seconds"] = round(time.time() - started, 1)
    results["medians"] = {
        key: median_metrics([flat_metrics(r) for r in results["runs"] if r["scenario"] == key])
        for key in args.scenarios
    }
    return results


def _oneline(record: dict[str, Any]) -> str:
    parts = []
    for side in [k for k in record if k == "direct" or k.startswith("gateway")]:
        r = record[side]
        parts.append(
            f"{side}: {r['streams']} ok / {r['failures']} failed, {r['streams_per_s']} streams/s, "
            f"TTFT p50 {_get(r, 'ttft_ms', 'p50')} ms"
        )
    return "; ".join(parts)


def raise_nofile(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


ENDPOINT_LABELS = {"chat": "POST /chat", "openai": "POST /v1/chat/completions (stream: true)"}


def stagger_label(stagger: float) -> str:
    return f"first requests spread over {stagger:g} s; " if stagger else ""


def render(results: dict[str, Any], workers: Sequence[int]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, "
        f"kernel {m['kernel']}; {results['placement']}"
        + (" (workers rows: gateway unpinned)" if "workers" in results["medians"] else ""),
        f"Endpoint: {ENDPOINT_LABELS[results['args'].get('endpoint', 'chat')]}; "
        f"server: {results['args'].get('server', 'uvicorn')}; "
        f"upstream transport: {results['args'].get('upstream_transport') or 'default'}; "
        f"{stagger_label(results['args'].get('stagger', 0.0))}"
        f"Runs: {results['args']['runs']} (medians)"
        f"{' — quick mode' if results['args']['quick'] else ''}; "
        f"git {m['git'].get('commit', '?')} ({m['git'].get('dirty_files', '?')} files changed)",
    ]
    if results.get("placement_warning"):
        lines.append(f"WARNING: {results['placement_warning']}")
    lines.extend(f"WARNING: {w}" for w in load_warnings(results["medians"]))
    lines.extend(f"WARNING: {w}" for w in disturbance_warnings(results["runs"]))
    lines += ["", markdown_table(TABLE_HEADERS, table_rows(results["medians"], workers))]
    if "profile" in results:
        lines += ["", profile_markdown(results["profile"])]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = run(args)
    except KeyboardInterrupt:
        print("interrupted: every process started was stopped", file=sys.stderr)
        return 130
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results, args.workers))
    print(f"\n(raw results: {args.output}; {results['seconds']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
