"""Side-by-side: the project's pipeline vs the seed-style Python baseline.

ecg-stream's copy of ../shared/peers/python-baseline/driver.py, adapted to
Storage v2 (the only changes): the completion check and the row count read
`ecg.blocks` (`sum(samples)`, one row per chunk and lead) instead of a
count() over the `samples` view, which would decode every block of the 40
ECGs at every poll and charge that to ecg-stream's ClickHouse CPU; and
`--baseline-dir` says where gateway.py and worker.py are (default
<project>/../shared/peers/python-baseline). The correctness checks still
read the `samples` view (row count, duplicates, ECG 0 bit for bit), after
the clock stops.

The SAME workload, the SAME client code, back to back in one run, on the same
broker (tansu :9092) and ClickHouse (:8123):

  project    : client -> ingest :8080 -> ecg.chunks -> processor -> ecg.samples
               (the running stack; pids from <project>/.local/run/*.pid)
  baseline-Nw: client -> gateway.py :8090 (FastAPI, 1 uvicorn process)
               -> baseline.chunks -> N x worker.py -> baseline.samples
               (started and stopped by this script)

Per target: wall time from the first request until every sample is in
ClickHouse (polling count()), end-to-end samples/s, accepted samples/s
(until the last 202), client request latency p50/p99, CPU seconds of each
process (utime+stime from /proc/PID/stat, deltas over the run) and the
1-minute load average. Then correctness: per-lead zero crossings of every
ECG against a one-pass numpy count over the whole signal, the row count
without duplicates, and ECG 0's samples read back bit for bit.

Run with the baseline's venv (see README.md):
  /tmp/baseline-venv/bin/python driver.py                 # 40 ECGs x 30 chunks x 12 leads x 1000
  /tmp/baseline-venv/bin/python driver.py --ecgs 8 --chunks 10 --targets baseline1
"""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import multiprocessing as mp
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import clickhouse_connect
import numpy as np
import orjson

# Where gateway.py and worker.py are: set from --baseline-dir in main().
HERE = ""
CLK = os.sysconf("SC_CLK_TCK")
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


# ------------------------------------------------------------------ data ---

class Workload:
    """ECG e, chunk k, lead L = the real 10 s recording rotated by e*rot
    samples, wrapped: samples [off + k*n, off + (k+1)*n) mod 5000."""

    def __init__(self, path: str, ecgs: int, chunks: int, n: int, rot: int = 250) -> None:
        d = json.load(open(path))
        self.sig = {L: np.asarray(d["signals"][L], dtype=np.float64) for L in LEADS}
        self.len = len(self.sig["I"])
        self.ecgs, self.chunks, self.n, self.rot = ecgs, chunks, n, rot
        self._frag: dict[int, bytes] = {}

    def start(self, e: int, k: int) -> int:
        return (e * self.rot + k * self.n) % self.len

    def lead_slice(self, L: str, s: int) -> np.ndarray:
        idx = (np.arange(s, s + self.n)) % self.len
        return self.sig[L][idx]

    def fragment(self, s: int) -> bytes:
        f = self._frag.get(s)
        if f is None:
            f = self._frag[s] = orjson.dumps({L: self.lead_slice(L, s).tolist() for L in LEADS})
        return f

    def prebuild(self) -> None:
        for e in range(self.ecgs):
            for k in range(self.chunks):
                self.fragment(self.start(e, k))

    def full_signal(self, e: int, L: str) -> np.ndarray:
        return np.concatenate([self.lead_slice(L, self.start(e, k)) for k in range(self.chunks)])

    @property
    def total(self) -> int:
        return self.ecgs * self.chunks * self.n * len(LEADS)


def oracle_crossings(x: np.ndarray) -> int:
    """One pass over the whole signal: sign changes between consecutive
    non-zero samples (zeros carry the last non-zero sign)."""
    s = np.sign(x)
    s = s[s != 0]
    return int(np.count_nonzero(s[1:] != s[:-1]))


# --------------------------------------------------------------- targets ---

class Target:
    """How the shared client talks to one pipeline."""

    def __init__(self, name: str, port: int, kind: str) -> None:
        self.name, self.port, self.kind = name, port, kind

    def open_req(self, device: str) -> tuple[str, bytes]:
        body = orjson.dumps({"device_id": device, "sample_rate_hz": 500, "leads": LEADS, "units": "mV"})
        return ("/v1/ecgs" if self.kind == "project" else "/ecgs"), body

    def chunk_req(self, ecg_id: str, seq: int, final: bool, frag: bytes) -> tuple[str, bytes]:
        head = b'{"seq":%d,"final":%s,' % (seq, b"true" if final else b"false")
        if self.kind == "project":
            return f"/v1/ecgs/{ecg_id}/chunks", head + b'"samples":' + frag + b"}"
        return "/chunks", head + b'"ecg_id":"' + ecg_id.encode() + b'","samples":' + frag + b"}"

    def progress_sql(self, ids: list[str]) -> str:
        """Samples accounted for in the per-chunk table: cheap to poll. A
        count() over the samples table itself costs ClickHouse 0.1-0.3 CPU
        seconds per poll at 14.4 M rows (it reads the ecg_id column of every
        selected granule), which would distort the very CPU being measured."""
        lst = ",".join(f"'{i}'" for i in ids)
        if self.kind == "project":
            return f"SELECT sum(samples) FROM ecg.blocks WHERE tenant = 'demo' AND ecg_id IN ({lst})"
        return f"SELECT sum(samples) FROM baseline.lead_chunks WHERE ecg_id IN ({lst})"

    def count_sql(self, ids: list[str]) -> str:
        lst = ",".join(f"'{i}'" for i in ids)
        if self.kind == "project":
            # Storage v2: one row per chunk and lead; its samples are counted
            # without decoding them (the samples view would decode each block).
            return f"SELECT sum(samples) FROM ecg.blocks WHERE tenant = 'demo' AND ecg_id IN ({lst})"
        return f"SELECT count() FROM baseline.samples WHERE ecg_id IN ({lst})"


def post(conn: http.client.HTTPConnection, path: str, body: bytes, token: str) -> tuple[int, bytes]:
    conn.request("POST", path, body, {"Content-Type": "application/json",
                                      "Authorization": f"Bearer {token}"})
    r = conn.getresponse()
    return r.status, r.read()


def client_proc(target: Target, wl: Workload, mine: list[int], token: str, start_evt, out_q, tag: str) -> None:
    """One client: opens its ECGs, then sends their chunks seq by seq,
    interleaving its ECGs like devices streaming side by side; a chunk is sent
    only after the previous one of the same ECG was answered 202."""
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=120)
    start_evt.wait()
    ids = {}
    lat, retries, errors = [], 0, []
    for e in mine:
        path, body = target.open_req(f"{tag}-dev-{e}")
        st, resp = post(conn, path, body, token)
        if st not in (200, 201, 202):
            errors.append(f"open {e}: {st} {resp[:200]!r}")
            out_q.put(("ids", {}))
            out_q.put(("done", lat, retries, errors))
            return
        ids[e] = orjson.loads(resp)["id"]
    out_q.put(("ids", ids))
    for k in range(wl.chunks):
        for e in mine:
            path, body = target.chunk_req(ids[e], k, k == wl.chunks - 1, wl.fragment(wl.start(e, k)))
            for attempt in range(50):
                t = time.perf_counter()
                try:
                    st, resp = post(conn, path, body, token)
                except (http.client.HTTPException, OSError) as ex:
                    st, resp = -1, repr(ex).encode()
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=120)
                lat.append(time.perf_counter() - t)
                if st == 202:
                    break
                retries += 1
                if len(errors) < 5:
                    errors.append(f"chunk {e}/{k}: {st} {resp[:200]!r}")
                time.sleep(0.05 * (attempt + 1))
    out_q.put(("done", lat, retries, errors))


# ------------------------------------------------------------------- cpu ---

def cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK  # utime, stime (fields 14, 15)
    except (FileNotFoundError, ProcessLookupError):
        return None


def snapshot(pids: dict[str, int]) -> dict[str, float | None]:
    return {k: cpu_s(p) for k, p in pids.items()}


def total_cpu() -> float:
    with open("/proc/stat") as f:
        v = f.readline().split()[1:]
    return sum(int(x) for x in v) / CLK, int(v[3]) / CLK + int(v[4]) / CLK  # all, idle+iowait


def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def rustc_running() -> int:
    n = 0
    for p in glob.glob("/proc/[0-9]*/comm"):
        try:
            if open(p).read().strip() in ("rustc", "cargo"):
                n += 1
        except OSError:
            pass
    return n


def wait_quiet(pid: int, max_s: float = 30, below: float = 0.15) -> float:
    """Wait until `pid` (ClickHouse) uses < `below` of a core over 1 s."""
    t0 = time.time()
    while time.time() - t0 < max_s:
        a = cpu_s(pid)
        time.sleep(1)
        b = cpu_s(pid)
        if a is None or b is None or b - a < below:
            break
    return time.time() - t0


# ------------------------------------------------------------------- run ---

def run_target(target: Target, wl: Workload, token: str, ch, own: dict[str, int], infra: dict[str, int],
               clients: int, timeout_s: float) -> dict:
    # Warm-up: one ECG, one chunk, through the whole pipeline.
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=60)
    path, body = target.open_req(f"warmup-{target.name}")
    st, resp = post(conn, path, body, token)
    assert st in (200, 201, 202), (st, resp)
    wid = orjson.loads(resp)["id"]
    path, body = target.chunk_req(wid, 0, True, wl.fragment(0))
    st, resp = post(conn, path, body, token)
    assert st == 202, (st, resp)
    t = time.time()
    while ch.command(target.count_sql([wid])) < wl.n * len(LEADS):
        if time.time() - t > 60:
            raise RuntimeError(f"{target.name}: warm-up chunk not in ClickHouse after 60 s")
        time.sleep(0.1)
    conn.close()
    wait_quiet(infra["clickhouse"])

    ctx = mp.get_context("fork")
    start_evt = ctx.Event()
    q = ctx.Queue()
    procs = []
    tag = f"{target.name}-{int(time.time())}"
    for c in range(clients):
        mine = list(range(c, wl.ecgs, clients))
        p = ctx.Process(target=client_proc, args=(target, wl, mine, token, start_evt, q, tag))
        p.start()
        procs.append(p)
    time.sleep(0.3)
    pids = {**own, **infra}
    load_before = loadavg()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = snapshot(pids)
    sys0 = total_cpu()
    t0 = time.perf_counter()
    start_evt.set()

    ids: dict[int, str] = {}
    lat: list[float] = []
    retries, errors, done = 0, [], 0
    t_accepted = t_end = None
    count = 0
    polls = sample_polls = 0
    while True:
        while not q.empty() or (done < clients and len(ids) < wl.ecgs):
            msg = q.get()
            if msg[0] == "ids":
                ids.update(msg[1])
            else:
                done += 1
                lat += msg[1]
                retries += msg[2]
                errors += msg[3]
                if done == clients:
                    t_accepted = time.perf_counter()
        if errors and len(ids) < wl.ecgs and done == clients:
            break
        # Poll the per-chunk table; once it has everything, confirm with a
        # count() of the samples themselves (the end of the wall time).
        if len(ids) == wl.ecgs:
            progress = int(ch.command(target.progress_sql(list(ids.values()))) or 0)
            polls += 1
            if progress >= wl.total:
                count = int(ch.command(target.count_sql(list(ids.values()))))
                sample_polls += 1
                if count >= wl.total:
                    t_end = time.perf_counter()
                    break
        if time.perf_counter() - t0 > timeout_s:
            break
        time.sleep(0.25)
    cpu1 = snapshot(pids)
    sys1 = total_cpu()
    if t_end is None and ids:
        count = int(ch.command(target.count_sql(list(ids.values()))))
    # ClickHouse keeps merging the run's parts after the last row is in:
    # count that too (until it idles), so a run is not billed for the
    # previous one's merges nor spared its own.
    settle_s = wait_quiet(infra["clickhouse"], max_s=60)
    ch_settled = cpu_s(infra["clickhouse"])
    load_after = loadavg()
    while done < clients:
        msg = q.get()
        if msg[0] == "done":
            done += 1
            lat += msg[1]
            retries += msg[2]
            errors += msg[3]
            t_accepted = t_accepted or time.perf_counter()
    for p in procs:
        p.join()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = (t_end - t0) if t_end else None
    lat_ms = np.asarray(lat) * 1000
    cpu = {k: (round(cpu1[k] - cpu0[k], 2) if cpu0[k] is not None and cpu1[k] is not None else None)
           for k in pids}
    busy = (sys1[0] - sys0[0]) - (sys1[1] - sys0[1])
    return {
        "target": target.name,
        "ecg_ids": [[e, ids[e]] for e in sorted(ids)],
        "samples": wl.total,
        "samples_in_clickhouse": count,
        "complete": t_end is not None,
        "wall_s": round(wall, 2) if wall else None,
        "accepted_s": round(t_accepted - t0, 2) if t_accepted else None,
        "e2e_msamples_per_s": round(wl.total / wall / 1e6, 3) if wall else None,
        "accepted_msamples_per_s": round(wl.total / (t_accepted - t0) / 1e6, 3) if t_accepted else None,
        "requests": len(lat),
        "retries": retries,
        "errors": errors[:5],
        "latency_ms_p50": round(float(np.percentile(lat_ms, 50)), 2) if lat else None,
        "latency_ms_p99": round(float(np.percentile(lat_ms, 99)), 2) if lat else None,
        "latency_ms_max": round(float(lat_ms.max()), 2) if lat else None,
        "cpu_s": cpu,
        "cpu_s_own": round(sum(v for k, v in cpu.items() if k in own and v is not None), 2),
        "cpu_s_infra": round(sum(v for k, v in cpu.items() if k in infra and v is not None), 2),
        "cpu_s_clickhouse_until_idle": round(ch_settled - cpu0["clickhouse"], 2),
        "clickhouse_settle_s": round(settle_s, 1),
        "cpu_s_clients": round((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime), 2),
        "cpu_s_machine_busy": round(busy, 2),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "rustc_or_cargo_procs": rustc_running(),
        "progress_polls": polls,
        "samples_count_polls": sample_polls,
    }


# --------------------------------------------------------- verification ---

def verify(res: dict, wl: Workload, ch, token: str, query_url: str) -> dict:
    pairs = res["ecg_ids"]  # [ECG number in the workload, id]
    ids = [i for _, i in pairs]
    out = {"crossings_ok": 0, "crossings_bad": [], "ecgs_checked": len(ids)}
    expected = {(i, L): oracle_crossings(wl.full_signal(e, L)) for e, i in pairs for L in LEADS}
    lst = ",".join(f"'{i}'" for i in ids)
    if res["target"].startswith("project"):
        got = {}
        for i in ids:
            rq = urllib.request.Request(f"{query_url}/v1/ecgs/{i}/insights",
                                        headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(rq, timeout=30) as r:
                d = json.load(r)
            for L, v in d["leads"].items():
                got[(i, L)] = v["zero_crossings"]
            rq = urllib.request.Request(f"{query_url}/v1/ecgs/{i}", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(rq, timeout=30) as r:
                s = json.load(r)
            if s.get("status") != "complete" or s.get("chunks_processed") != wl.chunks:
                out.setdefault("status_bad", []).append((i, s.get("status"), s.get("chunks_processed")))
        table = "ecg.samples"
        where = f"tenant = 'demo' AND ecg_id IN ({lst})"
    else:
        rows = ch.query(f"SELECT ecg_id, lead, sum(crossings), max(crossings_total), count() "
                        f"FROM baseline.lead_chunks WHERE ecg_id IN ({lst}) GROUP BY ecg_id, lead").result_rows
        got = {}
        for i, L, s, tot, n in rows:
            got[(i, L)] = int(s)
            if int(tot) != int(s) or n != wl.chunks:
                out.setdefault("lead_chunks_bad", []).append((i, L, s, tot, n))
        table = "baseline.samples"
        where = f"ecg_id IN ({lst})"
    for key, exp in expected.items():
        if got.get(key) == exp:
            out["crossings_ok"] += 1
        else:
            out["crossings_bad"].append((key[0], key[1], exp, got.get(key)))
    out["crossings_bad"] = out["crossings_bad"][:5]
    out["crossings_checked"] = len(expected)
    out["total_crossings"] = sum(expected.values())
    n, u = ch.query(f"SELECT count(), uniqExact(ecg_id, lead, sample_index) FROM {table} WHERE {where}").result_rows[0]
    out["rows"], out["distinct_rows"] = int(n), int(u)
    # ECG 0, every sample of every lead, bit for bit.
    e0, id0 = pairs[0]
    one = ("tenant = 'demo' AND " if res["target"].startswith("project") else "") + f"ecg_id = '{id0}'"
    q = ch.query(f"SELECT lead, groupArray(value) FROM (SELECT lead, sample_index, value FROM {table} "
                 f"WHERE {one} ORDER BY lead, sample_index) GROUP BY lead").result_rows
    bad = 0
    for L, vals in q:
        exp = wl.full_signal(e0, L)
        got_v = np.asarray(vals, dtype=np.float64)
        if got_v.shape != exp.shape or not np.array_equal(got_v.view(np.uint64), exp.view(np.uint64)):
            bad += 1
    out[f"ecg{e0}_leads_bitexact"] = f"{len(q) - bad}/{len(LEADS)}"
    return out


# ------------------------------------------------------ baseline procs ---

def create_topics(topics: dict[str, int]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": "127.0.0.1:9092"})
    have = a.list_topics(timeout=10).topics
    new = [NewTopic(t, num_partitions=n, replication_factor=1) for t, n in topics.items() if t not in have]
    for f in (a.create_topics(new).values() if new else []):
        f.result(timeout=30)


def delete_topics(topics: list[str]) -> str:
    """Frees the broker's memory (tansu here keeps messages in memory)."""
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": "127.0.0.1:9092"})  # kept alive until the futures resolve
    try:
        for f in a.delete_topics(topics).values():
            f.result(timeout=30)
        return "deleted"
    except Exception as e:  # noqa: best effort
        return f"not deleted: {e}"


class Baseline:
    """gateway.py + N worker.py, fresh for each run, on a fresh topic
    (baseline.chunks.<run>) and consumer group: tansu here never completes a
    rebalance of a group whose members all left (the dead leader stays; the
    next member loops on 'Group rebalance in progress'), so a group is not
    reused."""

    def __init__(self, py: str, port: int, logdir: str, run: str) -> None:
        self.py, self.port, self.logdir = py, port, logdir
        self.gateway: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.status_dir = os.path.join(logdir, "status")
        os.makedirs(self.status_dir, exist_ok=True)
        self.env = {**os.environ, "BASELINE_TOPIC": f"baseline.chunks.{run}", "BASELINE_GROUP": f"baseline-workers-{run}"}

    def setup(self, ch) -> None:
        sys.path.insert(0, HERE)
        import worker  # noqa: the DDL lives there
        worker.ensure_schema(ch)
        create_topics({self.env["BASELINE_TOPIC"]: 4})

    def start_gateway(self) -> None:
        log = open(os.path.join(self.logdir, "gateway.log"), "ab")
        self.gateway = subprocess.Popen(
            [self.py, "-m", "uvicorn", "gateway:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1", "--log-level", "warning", "--no-access-log"],
            cwd=HERE, stdout=log, stderr=log, start_new_session=True, env=self.env)
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return
            except OSError:
                if self.gateway.poll() is not None:
                    raise RuntimeError("gateway exited; see gateway.log")
                time.sleep(0.1)
        raise RuntimeError("gateway not healthy")

    def start_workers(self, n: int) -> None:
        for f in glob.glob(os.path.join(self.status_dir, "worker-*.json")):
            os.remove(f)
        log = open(os.path.join(self.logdir, "worker.log"), "ab")
        for _ in range(n):
            self.workers.append(subprocess.Popen([self.py, "worker.py", "--status-dir", self.status_dir],
                                                 cwd=HERE, stdout=log, stderr=log, start_new_session=True,
                                                 env=self.env))
        # Until every worker holds partitions, together all 4, stable for 1.5 s.
        stable_since, last = None, None
        t = time.time()
        while time.time() - t < 90:
            for w in self.workers:
                if w.poll() is not None:
                    raise RuntimeError("worker exited; see worker.log")
            assign = {}
            for w in self.workers:
                try:
                    assign[w.pid] = tuple(json.load(open(os.path.join(self.status_dir, f"worker-{w.pid}.json")))["partitions"])
                except (OSError, ValueError):
                    assign[w.pid] = ()
            parts = [p for v in assign.values() for p in v]
            ok = all(assign.values()) and sorted(parts) == [0, 1, 2, 3]
            if ok and assign == last:
                if stable_since and time.time() - stable_since > 1.5:
                    return
                stable_since = stable_since or time.time()
            else:
                stable_since = None
            last = assign
            time.sleep(0.2)
        raise RuntimeError(f"workers never got a stable assignment: {last}")

    def stop_workers(self) -> None:
        for w in self.workers:
            if w.poll() is None:
                os.kill(w.pid, signal.SIGTERM)
        for w in self.workers:
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(w.pid, signal.SIGKILL)
                w.wait()
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        if self.gateway and self.gateway.poll() is None:
            os.kill(self.gateway.pid, signal.SIGTERM)
            try:
                self.gateway.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.gateway.pid, signal.SIGKILL)
                self.gateway.wait()
        self.gateway = None

    def topics(self) -> list[str]:
        return [self.env["BASELINE_TOPIC"]]

    def own_pids(self) -> dict[str, int]:
        d = {"gateway": self.gateway.pid}
        for j, w in enumerate(self.workers):
            d[f"worker{j + 1}"] = w.pid
        return d



# ---------------------------------------------- project side instances ---

class SideStack:
    """The project's own binaries started beside the running stack: one
    ingest on its own port and topic, N processors in their own consumer
    group, both writing to the same ClickHouse database `ecg`. The running
    stack (its topic ecg.chunks and group ecg-processor) is not touched.
    Gives the project the same N-worker row as the baseline, and a way to
    measure another build profile (--side-bin-dir .../target/release)."""

    ANSI = re.compile(r"\x1b\[[0-9;]*m")
    PARTS = re.compile(r"partitions=(\[[^\]]*\])")

    def __init__(self, bin_dir: str, port: int, topic: str, group: str, query_url: str, logdir: str) -> None:
        self.bin_dir, self.port, self.topic, self.group = bin_dir, port, topic, group
        self.query_url, self.logdir = query_url, logdir
        self.ingest: subprocess.Popen | None = None
        self.procs: list[tuple[subprocess.Popen, str]] = []
        self.n_started = 0

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECG_")}
        env.update({"ECG_KAFKA__BROKERS": "127.0.0.1:9092", "ECG_KAFKA__TOPIC": self.topic,
                    "ECG_CLICKHOUSE__URL": "http://127.0.0.1:8123", "ECG_CLICKHOUSE__DATABASE": "ecg",
                    "RUST_LOG": "info", "NO_COLOR": "1"})
        env.update(extra)
        return env

    def setup(self) -> None:
        create_topics({self.topic: 4, self.topic + ".dlq": 1})

    def topics(self) -> list[str]:
        return [self.topic, self.topic + ".dlq"]

    def start_ingest(self) -> None:
        log = open(os.path.join(self.logdir, "side-ingest.log"), "ab")
        self.ingest = subprocess.Popen(
            [os.path.join(self.bin_dir, "ingest")], cwd=self.logdir, stdout=log, stderr=log, start_new_session=True,
            env=self._env({"ECG_HTTP__ADDR": f"127.0.0.1:{self.port}", "ECG_AUTH__ISSUER": self.query_url,
                           "ECG_AUTH__AUDIENCE": "ecg-stream",
                           "ECG_AUTH__JWKS_URL": f"{self.query_url}/.well-known/jwks.json"}))
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1):
                    return
            except OSError:
                if self.ingest.poll() is not None:
                    raise RuntimeError("side ingest exited; see side-ingest.log")
                time.sleep(0.1)
        raise RuntimeError("side ingest not ready")

    def start_processors(self, n: int) -> None:
        for _ in range(n):
            self.n_started += 1
            path = os.path.join(self.logdir, f"side-processor-{self.group}-{self.n_started}.log")
            log = open(path, "ab")
            p = subprocess.Popen(
                [os.path.join(self.bin_dir, "processor")], cwd=self.logdir, stdout=log, stderr=log,
                start_new_session=True,
                env=self._env({"ECG_HTTP__ADDR": f"127.0.0.1:{self.port + 1 + self.n_started}",
                               "ECG_KAFKA__GROUP_ID": self.group}))
            self.procs.append((p, path))
        # Until every processor's last "partitions assigned" is non-empty and
        # together they hold all 4, stable for 2 s.
        t, since, last = time.time(), None, None
        while time.time() - t < 90:
            assign = {}
            for p, path in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"side processor exited; see {path}")
                lines = [self.ANSI.sub("", x) for x in open(path, errors="replace") if "partitions assigned" in x]
                m = self.PARTS.search(lines[-1]) if lines else None
                assign[p.pid] = tuple(json.loads(m.group(1))) if m else ()
            parts = sorted(q for v in assign.values() for q in v)
            if all(assign.values()) and parts == [0, 1, 2, 3] and assign == last:
                if since and time.time() - since > 2:
                    return
                since = since or time.time()
            elif assign != last:
                since = None
            last = assign
            time.sleep(0.2)
        raise RuntimeError(f"side processors never got a stable assignment: {last}")

    def stop_processors(self) -> None:
        for p, _ in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for p, _ in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        self.procs = []

    def stop(self) -> None:
        self.stop_processors()
        if self.ingest and self.ingest.poll() is None:
            os.kill(self.ingest.pid, signal.SIGTERM)
            try:
                self.ingest.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.ingest.pid, signal.SIGKILL)
                self.ingest.wait()

    def own_pids(self) -> dict[str, int]:
        d = {"ingest": self.ingest.pid}
        for j, (p, _) in enumerate(self.procs):
            d[f"processor{j + 1}"] = p.pid
        return d

# ------------------------------------------------------------------ main ---

def read_pid(project: str, name: str) -> int:
    return int(open(os.path.join(project, ".local/run", f"{name}.pid")).read().strip())


def fmt_table(results: list[dict]) -> str:
    hdr = ["target", "wall s", "e2e M samples/s", "accepted M/s", "p50 ms", "p99 ms", "retries",
           "CPU s own (per process)", "CPU s ClickHouse (until idle)", "CPU s broker", "CPU s clients", "load before"]
    rows = []
    for r in results:
        own = {k: v for k, v in r["cpu_s"].items() if k not in ("clickhouse", "kafka")}
        rows.append([r["target"], r["wall_s"] if r["complete"] else f"INCOMPLETE {r['samples_in_clickhouse']}",
                     r["e2e_msamples_per_s"], r["accepted_msamples_per_s"], r["latency_ms_p50"], r["latency_ms_p99"],
                     r["retries"], f"{r['cpu_s_own']} (" + ", ".join(f"{k} {v}" for k, v in own.items()) + ")",
                     f'{r["cpu_s"].get("clickhouse")} ({r["cpu_s_clickhouse_until_idle"]})', r["cpu_s"].get("kafka"), r["cpu_s_clients"], r["loadavg_before"]])
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", default=os.getcwd(), help="the project's root (default: the current directory)")
    ap.add_argument("--ecgs", type=int, default=40)
    ap.add_argument("--chunks", type=int, default=30)
    ap.add_argument("--chunk-samples", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--targets", default="project,baseline1,baseline2",
                    help="comma-separated: project (the running stack), baselineN (N workers), "
                         "sideN (the project's binaries beside the running stack, N processors)")
    ap.add_argument("--ingest-port", type=int, default=8080)
    ap.add_argument("--query-url", default="http://127.0.0.1:8081")
    ap.add_argument("--baseline-port", type=int, default=8090)
    ap.add_argument("--side-bin-dir", default=None,
                    help="where the project's ingest/processor binaries for sideN targets are "
                         "(default: the running ingest's own directory)")
    ap.add_argument("--side-port", type=int, default=18080)
    ap.add_argument("--baseline-dir", default=None,
                    help="where gateway.py and worker.py are (default: <project>/../shared/peers/python-baseline)")
    ap.add_argument("--timeout", type=float, default=240, help="seconds per target before giving up")
    ap.add_argument("--out", default="/tmp/ecg-baseline-results")
    args = ap.parse_args()
    global HERE
    HERE = os.path.abspath(args.baseline_dir or os.path.join(args.project, "..", "shared", "peers", "python-baseline"))

    os.makedirs(args.out, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    logdir = os.path.join(args.out, f"logs-{stamp}")
    os.makedirs(logdir, exist_ok=True)
    wl = Workload(os.path.join(args.project, "data/ecg/ecgplot_12lead.json"),
                  args.ecgs, args.chunks, args.chunk_samples)
    wl.prebuild()
    ch = clickhouse_connect.get_client(host="127.0.0.1", port=8123)
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "demo",
                                   "client_secret": "demo-secret"}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{args.query_url}/oauth/token", data=form), timeout=30) as r:
        token = json.load(r)["access_token"]
    infra = {"clickhouse": read_pid(args.project, "clickhouse"), "kafka": read_pid(args.project, "kafka")}
    print(f"workload: {wl.ecgs} ECGs x {wl.chunks} chunks x 12 leads x {wl.n} samples = {wl.total:,} samples, "
          f"{args.clients} client processes, JSON bodies ~{len(wl.fragment(0)) // 1024} KiB; load {loadavg()}",
          flush=True)

    stack = None  # the Baseline or SideStack of the current run
    running_bin = os.path.dirname(os.path.realpath(f"/proc/{read_pid(args.project, 'ingest')}/exe"))
    side_bin = args.side_bin_dir or running_bin
    print(f"running stack's binaries: {running_bin}; side binaries: {side_bin}", flush=True)
    results, checks = [], {}
    try:
        for run_i, name in enumerate(args.targets.split(",")):
            name = name.strip()
            if name == "project":
                target = Target(f"project ({os.path.basename(running_bin)})", args.ingest_port, "project")
                own = {"ingest": read_pid(args.project, "ingest"), "processor": read_pid(args.project, "processor")}
            elif name.startswith("baseline"):
                nw = int(name[len("baseline"):] or 1)
                stack = Baseline(sys.executable, args.baseline_port, logdir, f"{stamp}.{run_i}.{nw}w")
                stack.setup(ch)
                stack.start_gateway()
                stack.start_workers(nw)
                target = Target(f"baseline-{nw}w", args.baseline_port, "baseline")
                own = stack.own_pids()
            elif name.startswith("side"):
                n_proc = int(name[len("side"):] or 1)
                stack = SideStack(side_bin, args.side_port, f"ecg.chunks.cmp.{stamp}.{run_i}.{n_proc}p",
                                  f"ecg-processor-cmp-{stamp}-{run_i}-{n_proc}p", args.query_url, logdir)
                stack.setup()
                stack.start_ingest()
                stack.start_processors(n_proc)
                target = Target(f"project-side {os.path.basename(side_bin)} {n_proc}p", args.side_port, "project")
                own = stack.own_pids()
            else:
                raise SystemExit(f"unknown target {name}")
            wait_quiet(infra["clickhouse"])
            print(f"--> {target.name} ...", flush=True)
            res = run_target(target, wl, token, ch, own, infra, args.clients, args.timeout)
            print(json.dumps({k: v for k, v in res.items() if k != "ecg_ids"}), flush=True)
            if stack:
                stack.stop()
                print(f"    topics {stack.topics()}: {delete_topics(stack.topics())}", flush=True)
                stack = None
            if res["ecg_ids"]:
                checks[target.name] = res["check"] = verify(res, wl, ch, token, args.query_url)
                print(f"    check: {json.dumps(checks[target.name])}", flush=True)
            results.append(res)
    finally:
        if stack:
            stack.stop()

    print()
    print(fmt_table(results))
    projects = [r for r in results if r["target"].startswith("project") and r["e2e_msamples_per_s"]]
    baselines = [r for r in results if r["target"].startswith("baseline") and r["e2e_msamples_per_s"]]
    m = wl.total / 1e6
    for p in projects:
        for r in baselines:
            print(f"{p['target']} / {r['target']}: e2e throughput x{p['e2e_msamples_per_s'] / r['e2e_msamples_per_s']:.2f}; "
                  f"CPU s per M samples, own {p['cpu_s_own'] / m:.2f} vs {r['cpu_s_own'] / m:.2f}, "
                  f"with ClickHouse (until idle) + broker "
                  f"{(p['cpu_s_own'] + p['cpu_s_clickhouse_until_idle'] + p['cpu_s']['kafka']) / m:.2f} vs "
                  f"{(r['cpu_s_own'] + r['cpu_s_clickhouse_until_idle'] + r['cpu_s']['kafka']) / m:.2f}")
    path = os.path.join(args.out, f"compare-{stamp}.json")
    with open(path, "w") as f:
        json.dump({"args": vars(args), "results": results, "checks": checks}, f, indent=1)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
