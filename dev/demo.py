#!/usr/bin/env python3
"""Stream a real 12-lead ECG through the running stack and check the result.

The body of `make run`, after `dev/stack.sh up`:

  1. get a token from query-api (OAuth2 client credentials, demo client);
  2. open an ECG on ingest and stream data/ecg/ecgplot_12lead.json to it in
     chunks of 250 samples per lead, the last one marked final;
  3. poll query-api until the ECG is complete (60 s deadline);
  4. print the per-lead insights (zero crossings, beats, heart rate) and
     compare each lead's zero crossings with
     data/ecg/ecgplot_12lead.expected.json (computed independently);
  5. print curl commands to look at the same data by hand.

Exit status: 0 when every lead matches, 1 on a mismatch or a failed request.
Python standard library only. Ports come from the same environment variables
as dev/stack.sh (ECG_INGEST_PORT, ECG_QUERY_PORT, ECG_PROCESSOR_PORT, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
INGEST = f"http://{HOST}:{os.environ.get('ECG_INGEST_PORT', '8080')}"
QUERY = f"http://{HOST}:{os.environ.get('ECG_QUERY_PORT', '8081')}"
PROCESSOR = f"http://{HOST}:{os.environ.get('ECG_PROCESSOR_PORT', '8082')}"
CLICKHOUSE = f"http://{HOST}:{os.environ.get('ECG_CH_HTTP_PORT', '8123')}"
KAFKA = f"{HOST}:{os.environ.get('ECG_KAFKA_PORT', '9092')}"

# The demo client that query-api knows out of the box.
CLIENT_ID = "demo"
CLIENT_SECRET = "demo-secret"


class RequestFailed(Exception):
    """A request that could not be sent or got an unexpected status."""


def call(method, url, *, json_body=None, form=None, token=None, expect=(200,)):
    """Sends one request and returns the decoded JSON answer.

    Raises RequestFailed with the status and body when the status is not in
    `expect`, so the caller can print exactly what the server said.
    """
    headers = {"Accept": "application/json"}
    data = None
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise RequestFailed(f"{method} {url}: no answer ({reason}). Is the stack up? (make up; make status)") from None
    if status not in expect:
        text = body.decode(errors="replace").strip() or "(empty body)"
        raise RequestFailed(f"{method} {url}: HTTP {status}, expected {'/'.join(map(str, expect))}\n{text}")
    try:
        return json.loads(body) if body else None
    except ValueError:
        raise RequestFailed(f"{method} {url}: HTTP {status} but the body is not JSON:\n{body[:500]!r}") from None


def get_token():
    answer = call(
        "POST",
        f"{QUERY}/oauth/token",
        form={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    return answer["access_token"]


def stream(token, recording, chunk_samples, device_id):
    """Opens the ECG on ingest and sends it chunk by chunk; returns the id."""
    meta, signals = recording["meta"], recording["signals"]
    leads = list(meta["leads"])
    n = len(signals[leads[0]])
    created = call(
        "POST",
        f"{INGEST}/v1/ecgs",
        json_body={"device_id": device_id, "sample_rate_hz": meta["fs_hz"], "leads": leads, "units": meta.get("units", "mV")},
        token=token,
        expect=(202,),
    )
    ecg_id = created["id"]
    print(f"created ECG {ecg_id} (status_url {created.get('status_url')})")

    starts = range(0, n, chunk_samples)
    t0 = time.monotonic()
    for seq, start in enumerate(starts):
        end = min(start + chunk_samples, n)
        call(
            "POST",
            f"{INGEST}/v1/ecgs/{ecg_id}/chunks",
            # json.dumps writes floats with repr(), so every sample (and the
            # -0.0 samples of aVR) reaches the server bit for bit.
            json_body={"seq": seq, "samples": {lead: signals[lead][start:end] for lead in leads}, "final": end == n},
            token=token,
            expect=(202,),
        )
    print(f"streamed {len(starts)} chunks of {chunk_samples} samples x {len(leads)} leads in {time.monotonic() - t0:.2f} s")
    return ecg_id


def wait_complete(token, ecg_id, deadline_s):
    t0 = time.monotonic()
    last = None
    while True:
        status = call("GET", f"{QUERY}/v1/ecgs/{ecg_id}", token=token)
        progress = (status.get("status"), status.get("chunks_processed"))
        if progress != last:
            print(f"  {time.monotonic() - t0:5.1f} s  status={progress[0]} chunks_processed={progress[1]} final_seq={status.get('final_seq')}")
            last = progress
        if status.get("status") == "complete":
            return
        if status.get("status") == "failed":
            raise RequestFailed(f"ECG {ecg_id} failed in the processor:\n{json.dumps(status, indent=2)}")
        if time.monotonic() - t0 > deadline_s:
            raise RequestFailed(f"ECG {ecg_id} not complete after {deadline_s} s; last status:\n{json.dumps(status, indent=2)}")
        time.sleep(0.25)  # polling interval, not a synchronisation


def report(insights, expected, chunk_samples):
    """Prints the per-lead table; returns True when every lead matches."""
    want = expected["zero_crossings_per_lead"]
    rows, ok = [], True
    for lead in expected["leads"]:
        got = insights["leads"].get(lead)
        if got is None:
            rows.append((lead, "-", "-", "-", str(want[lead]), "MISSING", "-", "-"))
            ok = False
            continue
        match = got["zero_crossings"] == want[lead]
        ok &= match
        heart = got.get("heart_rate") or {}
        bpm = heart.get("heart_rate_bpm")
        rows.append(
            (
                lead,
                str(got["samples"]),
                str(got["zero_crossings"]),
                f"{got['zero_crossing_rate_hz']:.2f}",
                str(want[lead]),
                "match" if match else "MISMATCH",
                str(got.get("beats", 0)),
                "-" if bpm is None else f"{bpm:.0f}",
            )
        )
    header = ("lead", "samples", "zero crossings", "rate (Hz)", "expected", "", "beats", "HR bpm")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join(f"{{:{'<' if i in (0, 5) else '>'}{w}}}" for i, w in enumerate(widths))
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line.format(*r))
    total, want_total = insights.get("total_zero_crossings"), expected["zero_crossings_total"]
    ok &= total == want_total
    print(f"total zero crossings: {total} (expected {want_total}: {'match' if total == want_total else 'MISMATCH'})")
    bpm = insights.get("heart_rate_bpm")
    if bpm is not None:
        print(f"heart rate: {bpm:.0f} bpm (lead {insights.get('heart_rate_lead')}, from its windows of good signal quality)")
    naive = expected.get("naive_per_chunk_total_if_chunk_boundaries_are_ignored", {})
    if str(chunk_samples) in naive:
        print(f"(counting each chunk on its own, ignoring boundaries, would give {naive[str(chunk_samples)]})")
    return ok


def print_next_steps(ecg_id):
    token_cmd = (
        f"TOKEN=$(curl -s -X POST {QUERY}/oauth/token -d grant_type=client_credentials "
        f"-d client_id={CLIENT_ID} -d client_secret={CLIENT_SECRET} "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    print("\nTry it yourself:")
    print(f"  {token_cmd}")
    print(f'  curl -s -H "Authorization: Bearer $TOKEN" {QUERY}/v1/ecgs/{ecg_id}')
    print(f'  curl -s -H "Authorization: Bearer $TOKEN" {QUERY}/v1/ecgs/{ecg_id}/insights')
    print(f"\nDashboard: {QUERY}/dashboard#/ecg/{ecg_id} (sign in as {CLIENT_ID} / {CLIENT_SECRET})")
    print("\nServices:")
    for name, url in (
        ("ingest", INGEST),
        ("query-api", QUERY),
        ("processor", f"{PROCESSOR}/healthz"),
        ("clickhouse", CLICKHOUSE),
        ("kafka", KAFKA),
    ):
        print(f"  {name:<11} {url:<32} .local/logs/{name}.log")
    print("  make status | make logs | make down")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recording", type=Path, default=ROOT / "data/ecg/ecgplot_12lead.json")
    parser.add_argument("--expected", type=Path, default=ROOT / "data/ecg/ecgplot_12lead.expected.json")
    parser.add_argument("--chunk-samples", type=int, default=250)
    parser.add_argument("--device-id", default="demo-device-1")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds to wait for complete")
    args = parser.parse_args()

    recording = json.loads(args.recording.read_text())
    expected = json.loads(args.expected.read_text())
    try:
        token = get_token()
        print(f"got a token from {QUERY}/oauth/token (client {CLIENT_ID})")
        ecg_id = stream(token, recording, args.chunk_samples, args.device_id)
        print(f"waiting for ECG {ecg_id} to be complete (deadline {args.deadline:.0f} s)")
        wait_complete(token, ecg_id, args.deadline)
        insights = call("GET", f"{QUERY}/v1/ecgs/{ecg_id}/insights", token=token)
    except RequestFailed as e:
        print(f"demo: {e}", file=sys.stderr)
        print("demo: service logs are in .local/logs/ (make logs)", file=sys.stderr)
        return 1
    print()
    ok = report(insights, expected, args.chunk_samples)
    print_next_steps(ecg_id)
    if not ok:
        print("\ndemo: the zero crossings do not match the expected counts", file=sys.stderr)
        return 1
    print("\ndemo: all leads match the expected zero crossings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
