//! `ecgctl upload`: opens the ECG (`POST /v1/ecgs`, with each lead's gain
//! and baseline for WFDB and EDF), then streams its signal to `PUT
//! /v1/ecgs/{id}/signal`. WFDB and EDF samples go as CSV of the file's exact
//! ADC counts, written block by block on a blocking thread while the body is
//! sent: the file is never held whole, and nothing is rounded. A CSV file is
//! sent as it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use ecg_client::Api;
use ecg_formats::SignalReader;
use ecg_schemas::Units;
use ecg_schemas::api::CreateEcg;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::cli::{Format, Upload};
use crate::follow;
use crate::source::{self, Source};

/// Rows per CSV block sent.
const BLOCK_ROWS: usize = 8192;
/// Blocks buffered between the reader and the connection.
const QUEUE: usize = 8;

pub async fn upload(api: &Api, args: &Upload) -> anyhow::Result<()> {
    let device = args.device.clone().unwrap_or_else(|| {
        args.file
            .file_stem()
            .map_or("ecgctl".into(), |s| s.to_string_lossy().into_owned())
    });
    let source = source::open(&args.file, args.format, &args.leads)?;
    let (create, producer): (CreateEcg, Producer) = match source {
        Source::Decoded(reader) => decoded(reader, device, &args.leads)?,
        Source::Csv { path, leads, bytes } => {
            if !args.leads.is_empty() {
                bail!("--leads selects WFDB and EDF signals; a CSV file is sent as it is");
            }
            let rate = args
                .rate
                .context("a CSV file needs --rate (samples per second per lead)")?;
            let units = Units::parse(&args.units)
                .with_context(|| format!("--units {}: mV or uV", args.units))?;
            let file = std::fs::File::open(&path)?;
            let create = CreateEcg {
                device_id: device,
                sample_rate_hz: rate,
                leads,
                units,
                started_at: None,
                adc: None,
                signal: None,
            };
            (create, Producer::Csv { file, bytes })
        }
    };
    let key = uuid::Uuid::new_v4().to_string();
    let accepted = api
        .create_ecg_once(&create, Some(&key))
        .await
        .context("opening the ECG")?;
    let id = accepted.id;
    eprintln!(
        "ECG {id}: {} leads at {} Hz",
        create.leads.len(),
        create.sample_rate_hz
    );

    let bar = producer.progress_bar(args.quiet);
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(QUEUE);
    let reading = {
        let bar = bar.clone();
        tokio::task::spawn_blocking(move || producer.run(&tx, &bar))
    };
    let body =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let sent = api
        .put_signal_csv(id, reqwest::Body::wrap_stream(body))
        .await;
    // A reading error explains a broken upload better than the HTTP error.
    let samples_per_lead = reading
        .await
        .context("the file reader panicked")?
        .with_context(|| format!("reading {}", args.file.display()))?;
    let done = sent.with_context(|| format!("uploading the signal of ECG {id}"))?;
    bar.finish_and_clear();
    println!(
        "{}",
        serde_json::json!({"id": id, "chunks": done.chunks, "leads": create.leads, "samples_per_lead": samples_per_lead})
    );
    if args.wait {
        follow::until_complete(api, id).await?;
        follow::insights(api, id, Format::Auto).await?;
    }
    Ok(())
}

/// What writes the body.
enum Producer {
    /// ADC counts of the selected leads (`columns` indexes the reader's).
    Counts {
        reader: Box<dyn SignalReader>,
        columns: Vec<usize>,
        header: String,
    },
    Csv {
        file: std::fs::File,
        bytes: u64,
    },
}

fn decoded(
    reader: Box<dyn SignalReader>,
    device: String,
    wanted: &[String],
) -> anyhow::Result<(CreateEcg, Producer)> {
    let r = reader.recording().clone();
    let columns: Vec<usize> = if wanted.is_empty() {
        (0..r.leads.len()).collect()
    } else {
        wanted
            .iter()
            .map(|w| {
                r.leads
                    .iter()
                    .position(|l| l == w)
                    .with_context(|| format!("no lead {w:?}; the file has {:?}", r.leads))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let leads: Vec<String> = columns.iter().map(|&c| r.leads[c].clone()).collect();
    let adc: BTreeMap<_, _> = columns
        .iter()
        .map(|&c| (r.leads[c].clone(), r.calibration[c]))
        .collect();
    if adc.len() != leads.len() {
        bail!("the file names two leads alike ({leads:?}); pick distinct ones with --leads");
    }
    let header = leads
        .iter()
        .map(|l| csv_field(l))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    let create = CreateEcg {
        device_id: device,
        sample_rate_hz: r.sample_rate_hz,
        leads,
        units: Units::Millivolts,
        started_at: r.started_at,
        adc: Some(adc),
        signal: None,
    };
    Ok((
        create,
        Producer::Counts {
            reader,
            columns,
            header,
        },
    ))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.trim() != s {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Producer {
    fn progress_bar(&self, quiet: bool) -> ProgressBar {
        if quiet {
            return ProgressBar::hidden();
        }
        let (total, unit) = match self {
            Producer::Counts { reader, .. } => {
                (reader.recording().samples_per_lead, "samples/lead")
            }
            Producer::Csv { bytes, .. } => (Some(*bytes), "bytes"),
        };
        let bar = total.map_or_else(ProgressBar::no_length, ProgressBar::new);
        let template = format!(
            "{{elapsed_precise}} [{{wide_bar}}] {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})"
        );
        bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    }

    /// Sends the body in blocks; returns samples per lead (0 for CSV).
    fn run(self, tx: &mpsc::Sender<io::Result<Bytes>>, bar: &ProgressBar) -> anyhow::Result<u64> {
        let send = |b: io::Result<Bytes>| {
            tx.blocking_send(b)
                .map_err(|_| anyhow::anyhow!("the upload stopped"))
        };
        match self {
            Producer::Counts {
                mut reader,
                columns,
                header,
            } => {
                send(Ok(Bytes::from(header)))?;
                let mut rows = 0u64;
                loop {
                    let block = match reader.next_block(BLOCK_ROWS) {
                        Ok(Some(b)) => b,
                        Ok(None) => break,
                        Err(e) => {
                            // Abort the request body, then say why.
                            let _ = send(Err(io::Error::other(e.to_string())));
                            return Err(e.into());
                        }
                    };
                    let n = block[0].len();
                    let mut text = String::with_capacity(n * columns.len() * 6);
                    let selected: Vec<&[i32]> = columns.iter().map(|&c| &block[c][..]).collect();
                    for i in 0..n {
                        for (k, lead) in selected.iter().enumerate() {
                            if k > 0 {
                                text.push(',');
                            }
                            let _ = write!(text, "{}", lead[i]);
                        }
                        text.push('\n');
                    }
                    send(Ok(Bytes::from(text)))?;
                    rows += n as u64;
                    bar.inc(n as u64);
                }
                Ok(rows)
            }
            Producer::Csv { mut file, .. } => {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = file.read(&mut buf)?;
                    if n == 0 {
                        return Ok(0);
                    }
                    send(Ok(Bytes::copy_from_slice(&buf[..n])))?;
                    bar.inc(n as u64);
                }
            }
        }
    }
}
