//! Beats end to end, on a real, expert-annotated ECG: MIT-BIH record 100
//! (`data/mitdb`: 30 min, leads MLII and V5 at 360 Hz, 11-bit ADC counts)
//! streamed through the gateway as a digital ECG in one-second chunks, sent
//! out of order, some twice, the final one early. The processor runs each
//! lead's beat detector as the chunks are placed in seq order; the view
//! `beats` must then hold exactly the beats of one pass of
//! [`BeatDetector`] over the whole lead, each once, each stored with the
//! block whose placing decided it, with its RR interval and time:
//! - the whole record, the processor running throughout, and the beats of
//!   MLII scored against the cardiologists' (as `formats/tests/mitdb.rs`);
//! - its first 12 minutes (checkpoints at chunks 0, 299 and 599) with the
//!   processor a process SIGKILLed again and again while the chunks stream
//!   in: each restart restores the detectors' last checkpoint and replays
//!   the blocks placed after it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use ecg_e2e::process::ProcessorProcess;
use ecg_e2e::{Stack, kafka_brokers, wait_for};
use ecg_formats::{open_file, read_all};
use ecg_processor::beats::CHECKPOINT_SECONDS;
use ecg_schemas::Calibration;
use ecg_signal::score::{self, Scoring};
use ecg_signal::{Adc, Analytic, BeatDetector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

const RATE_HZ: f64 = 360.0;
/// One second of signal per chunk.
const CHUNK_SAMPLES: usize = 360;
/// Chunks are shuffled within windows of this many (30 s of signal).
const SHUFFLE_WINDOW: usize = 30;
/// The record's first sample, as seconds since the Unix epoch.
const STARTED_AT_UNIX_S: i64 = 1_767_258_000;

/// MIT-BIH record 100 as its files give it.
struct Record {
    leads: Vec<String>,
    calibration: Vec<Calibration>,
    /// Each lead's ADC counts.
    counts: Vec<Vec<i32>>,
    /// The cardiologists' beats, from `100.beats.csv`.
    reference: Vec<u64>,
}

fn mitdb() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mitdb")
}

fn record() -> &'static Record {
    static RECORD: OnceLock<Record> = OnceLock::new();
    RECORD.get_or_init(|| {
        read_record().unwrap_or_else(|e| {
            panic!(
                "reading MIT-BIH record 100 from {}: {e:#}",
                mitdb().display()
            )
        })
    })
}

fn read_record() -> anyhow::Result<Record> {
    let mut reader = open_file(&mitdb().join("100.hea"), &[])?;
    let rec = reader.recording().clone();
    ensure!(rec.sample_rate_hz == RATE_HZ, "{} Hz", rec.sample_rate_hz);
    ensure!(rec.leads == ["MLII", "V5"], "leads {:?}", rec.leads);
    let counts = read_all(reader.as_mut())?;
    ensure!(
        counts.iter().all(|c| c.len() == 650_000),
        "not 650,000 samples"
    );
    let csv = std::fs::read_to_string(mitdb().join("100.beats.csv"))?;
    let reference = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or_default().parse::<u64>())
        .collect::<Result<_, _>>()?;
    Ok(Record {
        leads: rec.leads,
        calibration: rec.calibration,
        counts,
        reference,
    })
}

impl Record {
    fn adc(&self, lead: usize) -> Adc {
        let c = self.calibration[lead];
        Adc {
            baseline: c.baseline,
            gain: c.gain,
        }
    }

    /// The beats of one pass of the detector over the first `n` samples of
    /// `lead`, each with the chunk whose placing decides it: pushed one
    /// chunk at a time, the last one followed by `finish`. (That the chunked
    /// beats are those of one pass is asserted here, not assumed.)
    fn beats(&self, lead: usize, n: usize) -> anyhow::Result<Vec<(u64, u32)>> {
        let counts = &self.counts[lead][..n];
        let mut whole = Vec::new();
        let mut d = BeatDetector::new(RATE_HZ)?;
        d.push_digital(counts, self.adc(lead), &mut whole);
        d.finish(&mut whole);

        let mut d = BeatDetector::new(RATE_HZ)?;
        let mut by_chunk = Vec::new();
        let last = n.div_ceil(CHUNK_SAMPLES) - 1;
        for (seq, chunk) in counts.chunks(CHUNK_SAMPLES).enumerate() {
            let mut beats = Vec::new();
            d.push_digital(chunk, self.adc(lead), &mut beats);
            if seq == last {
                d.finish(&mut beats);
            }
            by_chunk.extend(beats.into_iter().map(|b| (b, seq as u32)));
        }
        ensure!(
            by_chunk.iter().map(|&(b, _)| b).eq(whole.iter().copied()),
            "lead {}: the beats pushed chunk by chunk are not those of one pass",
            self.leads[lead]
        );
        Ok(by_chunk)
    }
}

/// Opens the record as a digital ECG: ADC counts, each lead's calibration.
async fn open(stack: &Stack, token: &str, r: &Record) -> anyhow::Result<Uuid> {
    let adc: serde_json::Map<String, Value> = r
        .leads
        .iter()
        .zip(&r.calibration)
        .map(|(l, c)| (l.clone(), json!(c)))
        .collect();
    let started_at = time::OffsetDateTime::from_unix_timestamp(STARTED_AT_UNIX_S)?
        .format(&time::format_description::well_known::Rfc3339)?;
    stack
        .open_ecg(
            token,
            json!({
                "device_id": "mitdb-100",
                "sample_rate_hz": RATE_HZ,
                "leads": r.leads,
                "started_at": started_at,
                "adc": adc,
            }),
        )
        .await
}

/// The order in which chunks `0..chunks` are sent: shuffled within windows
/// of [`SHUFFLE_WINDOW`]; `held_back` chunks sent only at the end (every
/// chunk after them waits until then); the final chunk a third of the way
/// in (the final seq is known long before the final chunk is placed); and
/// about one chunk in twenty sent again, later.
fn plan(chunks: usize, held_back: usize, rng: &mut StdRng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..chunks).collect();
    for window in order.chunks_mut(SHUFFLE_WINDOW) {
        for i in (1..window.len()).rev() {
            window.swap(i, rng.random_range(0..=i));
        }
    }
    for _ in 0..held_back {
        let seq = order.remove(rng.random_range(1..chunks - held_back));
        order.push(seq);
    }
    if let Some(at) = order.iter().position(|&s| s == chunks - 1) {
        let last = order.remove(at);
        order.insert(chunks / 3, last);
    }
    for i in 0..order.len() {
        if rng.random_bool(0.05) {
            let again = order[i];
            order.insert(rng.random_range(i + 1..=order.len()), again);
        }
    }
    order
}

/// What sends an ECG's chunks: the first `n` samples of the record.
#[derive(Clone)]
struct Sender {
    http: reqwest::Client,
    url: String,
    token: String,
    n: usize,
}

impl Sender {
    fn new(stack: &Stack, token: &str, id: Uuid, n: usize) -> Self {
        Sender {
            http: stack.http.clone(),
            url: format!("{}/v1/ecgs/{id}/chunks", stack.ingest),
            token: token.to_owned(),
            n,
        }
    }

    /// Sends chunk `seq` as JSON (integer counts), retrying 503 and 429.
    async fn send(&self, seq: usize) -> anyhow::Result<()> {
        let r = record();
        let range = seq * CHUNK_SAMPLES..((seq + 1) * CHUNK_SAMPLES).min(self.n);
        let samples: serde_json::Map<String, Value> = r
            .leads
            .iter()
            .zip(&r.counts)
            .map(|(l, c)| (l.clone(), json!(&c[range.clone()])))
            .collect();
        let is_final = range.end == self.n;
        let body = json!({"seq": seq, "final": is_final, "samples": samples});
        for _ in 0..60 {
            let response = self
                .http
                .post(&self.url)
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await?;
            match response.status().as_u16() {
                202 => return Ok(()),
                503 | 429 => tokio::time::sleep(Duration::from_millis(500)).await,
                other => anyhow::bail!("chunk {seq}: {other} {}", response.text().await?),
            }
        }
        anyhow::bail!("chunk {seq}: still refused after 60 attempts")
    }

    /// Sends the chunks of `order`, one request at a time, the k-th no
    /// sooner than k `gap`s after the first; `sent` counts those sent.
    async fn send_all(
        &self,
        order: &[usize],
        gap: Duration,
        sent: &AtomicUsize,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        for (k, &seq) in order.iter().enumerate() {
            tokio::time::sleep_until(start + gap * k as u32).await;
            self.send(seq).await?;
            sent.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// The last WARN or ERROR line of a service's log, without colours: why a
/// processor does not get going.
fn last_warning(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("WARN") || l.contains("ERROR"))
        .unwrap_or("none");
    let mut plain = String::new();
    let mut escape = false;
    for c in line.chars() {
        match (escape, c) {
            (false, '\u{1b}') => escape = true,
            (true, 'm') => escape = false,
            (false, c) => plain.push(c),
            (true, _) => {}
        }
    }
    plain
}

/// One stored beat, as the view `beats` gives it.
#[derive(Debug, Clone, Copy, PartialEq, clickhouse::Row, serde::Deserialize)]
struct StoredBeat {
    sample_index: u64,
    rr_ms: Option<f64>,
    /// `ts`, microseconds since the Unix epoch.
    ts_us: i64,
    seq: u32,
}

/// Says how the stored beats differ from the expected ones: where first,
/// what is missing, what is extra, what is stored more than once.
fn differences(expected: &[(u64, u32)], stored: &[(u64, u32)]) -> String {
    let first = expected
        .iter()
        .zip(stored)
        .position(|(e, s)| e != s)
        .unwrap_or(expected.len().min(stored.len()));
    let wanted: BTreeSet<u64> = expected.iter().map(|&(b, _)| b).collect();
    let mut times: BTreeMap<u64, usize> = BTreeMap::new();
    for &(b, _) in stored {
        *times.entry(b).or_default() += 1;
    }
    let few = |v: Vec<String>| {
        let n = v.len();
        let mut s = v.into_iter().take(20).collect::<Vec<_>>().join(", ");
        if n > 20 {
            s.push_str(&format!(", ... ({n} in all)"));
        }
        format!("[{s}]")
    };
    let missing = wanted
        .iter()
        .filter(|b| !times.contains_key(b))
        .map(u64::to_string)
        .collect();
    let extra = times
        .keys()
        .filter(|b| !wanted.contains(b))
        .map(u64::to_string)
        .collect();
    let repeated = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(b, n)| format!("{b} x{n}"))
        .collect();
    let moved = expected
        .iter()
        .filter_map(|&(b, seq)| {
            let at = stored.iter().find(|s| s.0 == b)?;
            (at.1 != seq).then(|| format!("{b} in block {} not {seq}", at.1))
        })
        .collect();
    format!(
        "{} beats stored, {} expected; first difference at beat {first}: expected {:?}, stored {:?} (sample index, seq); missing {}; extra {}; stored more than once {}; in another block {}",
        stored.len(),
        expected.len(),
        expected.get(first),
        stored.get(first),
        few(missing),
        few(extra),
        few(repeated),
        few(moved),
    )
}

/// Asserts that, for every lead of ECG `id` (the record's first `n`
/// samples), the view `beats` holds exactly the beats of one pass, each
/// once and in the block whose placing decides it, with its RR interval
/// (NULL for the first) and its time; that the blocks' beat columns agree
/// (beats count, `last_beat`) and that the lead's detector is checkpointed
/// at chunk 0 and in each block crossing a multiple of 300 s. Returns each
/// lead's beats.
async fn assert_beats_of_one_pass(
    stack: &Stack,
    id: Uuid,
    n: usize,
) -> anyhow::Result<Vec<Vec<u64>>> {
    let r = record();
    let client = stack.clickhouse.client();
    let chunks = n.div_ceil(CHUNK_SAMPLES);
    let every = (RATE_HZ * CHECKPOINT_SECONDS).round() as usize;
    let checkpoints: Vec<u32> = (0..chunks)
        .filter(|&s| {
            let (first, end) = (s * CHUNK_SAMPLES, ((s + 1) * CHUNK_SAMPLES).min(n));
            first == 0 || first / every != end / every
        })
        .map(|s| s as u32)
        .collect();
    let mut all = Vec::new();
    for (l, lead) in r.leads.iter().enumerate() {
        let expected = r.beats(l, n)?;
        let rows: Vec<StoredBeat> = client
            .query(
                "SELECT ?fields FROM (
                     SELECT sample_index, rr_ms, toUnixTimestamp64Micro(ts) AS ts_us, seq
                     FROM beats WHERE tenant = 'demo' AND ecg_id = ? AND lead = ?
                 ) ORDER BY sample_index, seq",
            )
            .bind(id.to_string())
            .bind(lead)
            .fetch_all()
            .await?;
        let stored: Vec<(u64, u32)> = rows.iter().map(|b| (b.sample_index, b.seq)).collect();
        ensure!(
            stored == expected,
            "lead {lead}: {}",
            differences(&expected, &stored)
        );

        for (i, b) in rows.iter().enumerate() {
            let rr = match i {
                0 => None,
                _ => Some((b.sample_index - rows[i - 1].sample_index) as f64 * 1000.0 / RATE_HZ),
            };
            ensure!(
                b.rr_ms == rr,
                "lead {lead}, beat {i} at {}: rr_ms {:?}, expected {rr:?}",
                b.sample_index,
                b.rr_ms
            );
            let ts = STARTED_AT_UNIX_S * 1_000_000
                + (b.sample_index as f64 * 1e6 / RATE_HZ).round() as i64;
            ensure!(
                b.ts_us == ts,
                "lead {lead}, beat {i} at {}: ts {} us, expected {ts} us",
                b.sample_index,
                b.ts_us
            );
        }

        let blocks: Vec<(u32, u64, u64, bool)> = client
            .query(
                "SELECT seq, length(beats), last_beat, notEmpty(analytic_states) FROM blocks
                 WHERE tenant = 'demo' AND ecg_id = ? AND lead = ? ORDER BY seq",
            )
            .bind(id.to_string())
            .bind(lead)
            .fetch_all()
            .await?;
        let in_blocks: u64 = blocks.iter().map(|b| b.1).sum();
        ensure!(
            in_blocks == rows.len() as u64,
            "lead {lead}: the blocks hold {in_blocks} beats, the view {}",
            rows.len()
        );
        let mut last_beat = 0;
        let mut beats = expected.iter().peekable();
        for &(seq, _, stored_last, _) in &blocks {
            while let Some((b, _)) = beats.next_if(|(_, s)| *s <= seq) {
                last_beat = b + 1;
            }
            ensure!(
                stored_last == last_beat,
                "lead {lead}, block {seq}: last_beat {stored_last}, expected {last_beat}"
            );
        }
        let checkpointed: Vec<u32> = blocks.iter().filter(|b| b.3).map(|b| b.0).collect();
        ensure!(
            checkpointed == checkpoints,
            "lead {lead}: detector saved in blocks {checkpointed:?}, expected {checkpoints:?}"
        );
        all.push(expected.into_iter().map(|(b, _)| b).collect());
    }
    stack.assert_one_row_per_chunk(id).await?;
    Ok(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pipeline_finds_the_beats_of_one_pass_on_mit_bih_100() -> anyhow::Result<()> {
    let r = record();
    let n = r.counts[0].len();
    let stack = Stack::start("beats_mitdb").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let id = open(&stack, &token, r).await?;

    let order = plan(
        n.div_ceil(CHUNK_SAMPLES),
        2,
        &mut StdRng::seed_from_u64(100),
    );
    let started = Instant::now();
    Sender::new(&stack, &token, id, n)
        .send_all(&order, Duration::ZERO, &AtomicUsize::new(0))
        .await?;
    println!(
        "sent {} requests ({} chunks) in {:.1?}",
        order.len(),
        n.div_ceil(CHUNK_SAMPLES),
        started.elapsed()
    );
    stack
        .wait_complete(&token, id, (n * r.leads.len()) as u64)
        .await?;
    println!("complete {:.1?} after the first chunk", started.elapsed());

    let beats = assert_beats_of_one_pass(&stack, id, n).await?;
    let mlii = &beats[0];
    for (period, scoring) in [
        ("whole record", Scoring::whole(RATE_HZ)),
        ("from 5 min (bxb)", Scoring::bxb(RATE_HZ)),
    ] {
        let s = score::compare(&r.reference, mlii, scoring);
        println!("MLII, {period}: {s}");
        let (se, pp) = (
            s.sensitivity().context("no reference beat")?,
            s.positive_predictivity().context("no beat detected")?,
        );
        ensure!(se >= 0.998 && pp >= 0.998, "MLII, {period}: {s}");
    }
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn beats_survive_sigkilled_processors() -> anyhow::Result<()> {
    // 12 minutes: the detectors are checkpointed at chunks 0, 299 and 599.
    let n = 12 * 60 * CHUNK_SAMPLES;
    let chunks = n.div_ceil(CHUNK_SAMPLES);
    let stack = Stack::start_without_processor("beats_sigkill", &kafka_brokers()).await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let id = open(&stack, &token, record()).await?;
    let mut rng = StdRng::seed_from_u64(12);
    let order = plan(chunks, 0, &mut rng);
    let requests = order.len();

    let env = stack.processor_env();
    let mut processor = ProcessorProcess::start(&env, "p0").await?;
    let sent = Arc::new(AtomicUsize::new(0));
    let streaming = tokio::spawn({
        let (sender, sent) = (Sender::new(&stack, &token, id, n), sent.clone());
        async move {
            let gap = Duration::from_secs(60) / requests as u32;
            sender.send_all(&order, gap, &sent).await
        }
    });

    // Four SIGKILLs spread over the stream, each once the process owns
    // partitions and has written (a process killed before that proves
    // nothing), each followed by a restart. Chunks placed when each kill
    // came: a restart after chunk 299 restores a checkpoint and replays.
    let placed = || async {
        stack
            .count(
                "SELECT uniqExact(seq) FROM blocks WHERE ecg_id = ? AND lead = 'MLII'",
                id,
            )
            .await
    };
    let mut logs = vec![processor.log.clone()];
    let mut at_kills = Vec::new();
    for kill in 1..=4 {
        wait_for(
            Duration::from_secs(60),
            "the processor to own partitions and write",
            || async {
                Ok(processor
                    .metric("ecg_processor_rebalances_total", "kind=\"assign\"")
                    .await?
                    >= 1.0
                    && processor
                        .metric("ecg_processor_samples_written_total", "")
                        .await?
                        > 0.0)
            },
        )
        .await
        .with_context(|| {
            format!(
                "before kill {kill}; log: {}, its last warning: {}",
                processor.log.display(),
                last_warning(&processor.log)
            )
        })?;
        let target = requests * kill / 5;
        wait_for(Duration::from_secs(60), "the stream to go on", || async {
            Ok(sent.load(Ordering::SeqCst) >= target)
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_000))).await;
        let sent_then = sent.load(Ordering::SeqCst);
        ensure!(
            sent_then < requests,
            "kill {kill} came after the stream ended"
        );
        processor.kill();
        let placed_then = placed().await?;
        println!(
            "kill {kill}: {sent_then} of {requests} requests sent, {placed_then} chunks placed"
        );
        at_kills.push(placed_then);
        processor = ProcessorProcess::start(&env, &format!("p{kill}")).await?;
        logs.push(processor.log.clone());
    }
    streaming.await??;
    let logs = || {
        logs.iter()
            .map(|l| l.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    stack
        .wait_complete(&token, id, (n * record().leads.len()) as u64)
        .await
        .with_context(|| format!("processor logs: {}", logs()))?;
    assert_beats_of_one_pass(&stack, id, n)
        .await
        .with_context(|| {
            format!(
                "chunks placed at each kill: {at_kills:?}; processor logs: {}",
                logs()
            )
        })?;
    // Restarts that had a checkpoint after chunk 0 to restore and blocks
    // after it to replay.
    let replayed = at_kills
        .iter()
        .filter(|&&p| p > 300 && p < chunks as u64)
        .count();
    ensure!(
        replayed >= 1,
        "no kill came after the first 300-s checkpoint: chunks placed at each kill {at_kills:?}"
    );
    processor.stop(Duration::from_secs(15)).await?;
    stack.stop().await
}
