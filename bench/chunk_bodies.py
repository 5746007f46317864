"""Writes one realistic chunk (12 leads x 500 samples: a second of a 12-lead
500 Hz ECG, from data/ecg) in the gateway's three body formats:
chunk.json, chunk.csv, chunk.arrow. Usage: chunk_bodies.py OUT_DIR"""
import json
import pathlib
import sys

import pyarrow as pa

root = pathlib.Path(__file__).resolve().parent.parent
data = json.loads((root / "data/ecg/ecgplot_12lead.json").read_text())
leads = data["meta"]["leads"]
n = 500
samples = {lead: data["signals"][lead][:n] for lead in leads}
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
(out / "chunk.json").write_text(json.dumps({"seq": 1, "samples": samples}))
rows = ["time," + ",".join(leads)]
for i in range(n):
    rows.append(f"{i / 500:.3f}," + ",".join(repr(samples[l][i]) for l in leads))
(out / "chunk.csv").write_text("\n".join(rows) + "\n")
table = pa.table({lead: pa.array(samples[lead], pa.float64()) for lead in leads})
sink = pa.BufferOutputStream()
with pa.ipc.new_stream(sink, table.schema) as writer:
    writer.write_table(table)
(out / "chunk.arrow").write_bytes(sink.getvalue().to_pybytes())
(out / "leads.json").write_text(json.dumps(leads))
print(len(leads) * n)
