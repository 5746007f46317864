"""Writes realistic chunk bodies (12 leads of a 500 Hz ECG, from data/ecg)
in the gateway's body formats, into OUT_DIR:

- chunk.json, chunk.csv, chunk.arrow: one second (500 samples per lead) as
  millivolts (Arrow: Float64 columns);
- chunk_adc.arrow: the same second as Int16 ADC counts (1 count = 1 uV), for
  an ECG opened with a calibration (gain 1000, baseline 0);
- chunk_big.arrow, chunk_adc_big.arrow: 10,000 samples per lead (120,000 in
  all, the largest chunk the default limits accept), Float64 and Int16; the
  10 s recording is repeated to fill them.

Prints the samples in the one-second chunk. Usage: chunk_bodies.py OUT_DIR"""
import json
import pathlib
import sys

import pyarrow as pa

root = pathlib.Path(__file__).resolve().parent.parent
data = json.loads((root / "data/ecg/ecgplot_12lead.json").read_text())
leads = data["meta"]["leads"]
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)


def first(n):
    return {l: [data["signals"][l][i % len(data["signals"][l])] for i in range(n)] for l in leads}


def write_arrow(name, samples, typ):
    if typ == pa.int16():
        # Quantised to 1 uV, as a 16-bit ECG front end would record it.
        samples = {l: [round(v * 1000) for v in vs] for l, vs in samples.items()}
    table = pa.table({l: pa.array(samples[l], typ) for l in leads})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    (out / name).write_bytes(sink.getvalue().to_pybytes())


n = 500
samples = first(n)
(out / "chunk.json").write_text(json.dumps({"seq": 1, "samples": samples}))
rows = ["time," + ",".join(leads)]
for i in range(n):
    rows.append(f"{i / 500:.3f}," + ",".join(repr(samples[l][i]) for l in leads))
(out / "chunk.csv").write_text("\n".join(rows) + "\n")
write_arrow("chunk.arrow", samples, pa.float64())
write_arrow("chunk_adc.arrow", samples, pa.int16())
big = first(10_000)
write_arrow("chunk_big.arrow", big, pa.float64())
write_arrow("chunk_adc_big.arrow", big, pa.int16())
(out / "leads.json").write_text(json.dumps(leads))
print(len(leads) * n)
