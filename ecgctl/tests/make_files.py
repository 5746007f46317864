"""Writes the files ecgctl's end-to-end test uploads, from MIT-BIH record 208.

Usage: python make_files.py CACHE_DIR OUT_DIR

Record 208 (lead MLII, 108,000 samples at 360 Hz, ADC counts with gain 200
and baseline 1024) ships in scipy <= 1.14 as scipy/misc/ecg.dat, an .npz; the
wheel is downloaded once with pip into CACHE_DIR. Each file holds two leads:
the record and the record reversed in time, so frames interleave leads.

Writes, with the reference Python packages (wfdb, pyedflib):
  r212.hea/.dat   WFDB format 212
  r16.hea/.dat    WFDB format 16
  r208.edf        EDF+ (continuous), digital = count - 1024, 200 counts per mV
and expected.json: each file's signal as those packages decode it (digital
values per lead and the baseline at which the physical value is 0).
"""

import glob
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pyedflib
import wfdb

cache, out = sys.argv[1], sys.argv[2]
os.makedirs(cache, exist_ok=True)
os.makedirs(out, exist_ok=True)
wheels = glob.glob(os.path.join(cache, "scipy-1.14.0-*.whl"))
if not wheels:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--python-version", "3.11", "--platform", "manylinux2014_x86_64", "scipy==1.14.0", "-d", cache],
        check=True,
    )
    wheels = glob.glob(os.path.join(cache, "scipy-1.14.0-*.whl"))
dat = zipfile.ZipFile(wheels[0]).read("scipy/misc/ecg.dat")
assert hashlib.sha256(dat).hexdigest() == "f20ad3365fb9b7f845d0e5c48b6fe67081377ee466c3a220b7f69f35c8958baf"
adc = np.load(io.BytesIO(dat))["ecg"].astype(np.int64)
assert adc.shape == (108000,), adc.shape
leads = np.stack([adc, adc[::-1]], axis=1)
names = ["MLII", "MLII_reversed"]
expected = {}

for fmt in ["212", "16"]:
    name = f"r{fmt}"
    wfdb.wrsamp(name, fs=360, units=["mV", "mV"], sig_name=names, d_signal=leads.astype(np.int32),
                fmt=[fmt, fmt], adc_gain=[200.0, 200.0], baseline=[1024, 1024], write_dir=out)
    rec = wfdb.rdrecord(os.path.join(out, name), physical=False)
    assert (rec.d_signal == leads).all(), f"{name}: wfdb reads back other counts"
    expected[name] = {"leads": rec.sig_name, "baseline": [int(b) for b in rec.baseline],
                      "digital": [rec.d_signal[:, i].tolist() for i in range(2)]}

edf = os.path.join(out, "r208.edf")
w = pyedflib.EdfWriter(edf, 2, file_type=pyedflib.FILETYPE_EDFPLUS)
# Digital -32768..32767 is physical -163.84..163.835 mV: 200 counts per mV, 0 mV at 0.
w.setSignalHeaders([{"label": n, "dimension": "mV", "sample_frequency": 360,
                     "physical_min": -163.84, "physical_max": 163.835,
                     "digital_min": -32768, "digital_max": 32767,
                     "transducer": "", "prefilter": ""} for n in names])
w.setStartdatetime(__import__("datetime").datetime(2026, 11, 23, 8, 0, 0))
w.writeSamples([np.ascontiguousarray(leads[:, i] - 1024).astype(np.int32) for i in range(2)], digital=True)
w.close()
r = pyedflib.EdfReader(edf)
digital = [r.readSignal(i, digital=True).astype(np.int64) for i in range(2)]
for i in range(2):
    assert (digital[i] == leads[:, i] - 1024).all(), "pyedflib reads back other counts"
expected["r208.edf"] = {"leads": r.getSignalLabels(), "baseline": [0, 0],
                        "digital": [d.tolist() for d in digital]}
r.close()
json.dump(expected, open(os.path.join(out, "expected.json"), "w"))
