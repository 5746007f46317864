//! Faults the foundation must already survive: a processor killed mid-stream
//! (no drain, no commit) and restarted, and a chunk the processor refuses.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use ecg_e2e::{Stack, wait_for};
use ecg_processor::dlq;
use ecg_schemas::{Chunk, EcgHeader, Signal, Units};
use futures::stream::{self, StreamExt, TryStreamExt};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use uuid::Uuid;

async fn status(stack: &Stack, token: &str, id: Uuid, suffix: &str) -> anyhow::Result<Value> {
    let r = stack
        .http
        .get(format!("{}/v1/ecgs/{id}{suffix}", stack.query))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "GET answered {}", r.status());
    Ok(r.json().await?)
}

async fn send_all(stack: &Stack, token: &str, id: Uuid, chunks: &[Value]) -> anyhow::Result<()> {
    let url = format!("{}/v1/ecgs/{id}/chunks", stack.ingest);
    stream::iter(chunks)
        .map(|c| {
            let req = stack.http.post(&url).bearer_auth(token).json(c);
            async move {
                let r = req.send().await?;
                anyhow::ensure!(r.status() == 202, "chunk answered {}", r.status());
                Ok(())
            }
        })
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crossings_survive_processor_crashes_mid_stream() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/ecg");
    let data: Value = serde_json::from_slice(&std::fs::read(dir.join("ecgplot_12lead.json"))?)?;
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("ecgplot_12lead.expected.json"))?)?;
    let leads: Vec<String> = serde_json::from_value(data["meta"]["leads"].clone())?;
    let signals: BTreeMap<String, Vec<f64>> = serde_json::from_value(data["signals"].clone())?;

    let mut stack = Stack::start("crash").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let created: Value = stack
        .http
        .post(format!("{}/v1/ecgs", stack.ingest))
        .bearer_auth(&token)
        .json(&json!({"device_id": "crash-test", "sample_rate_hz": 500, "leads": leads}))
        .send()
        .await?
        .json()
        .await?;
    let id: Uuid = created["id"].as_str().context("id")?.parse()?;

    // 100 chunks of 50 samples, sent in three parts with a crash after each
    // of the first two, once the processor has written part of the data.
    let chunks: Vec<Value> = (0..100)
        .map(|seq| {
            let samples: BTreeMap<&String, &[f64]> = leads
                .iter()
                .map(|l| (l, &signals[l][seq * 50..seq * 50 + 50]))
                .collect();
            json!({"seq": seq, "samples": samples, "final": seq == 99})
        })
        .collect();
    for (part, range) in [(0, 0..40), (1, 40..70)] {
        send_all(&stack, &token, id, &chunks[range.clone()]).await?;
        wait_for(
            Duration::from_secs(30),
            "some chunks to be written",
            || async {
                Ok(
                    status(&stack, &token, id, "").await?["chunks_processed"].as_u64()
                        > Some(range.start as u64),
                )
            },
        )
        .await?;
        stack
            .crash_and_restart_processor()
            .await
            .with_context(|| format!("restart {part}"))?;
    }
    // The rest, plus early chunks again: after the restarts they must be
    // recognised as already written.
    send_all(&stack, &token, id, &chunks[70..]).await?;
    send_all(&stack, &token, id, &chunks[..10]).await?;

    wait_for(Duration::from_secs(60), "the ECG to complete", || async {
        Ok(status(&stack, &token, id, "").await?["status"] == "complete")
    })
    .await?;
    let insights = status(&stack, &token, id, "/insights").await?;
    for lead in &leads {
        assert_eq!(
            insights["leads"][lead]["zero_crossings"], expected["zero_crossings_per_lead"][lead],
            "lead {lead}"
        );
    }
    let rows = stack
        .count("SELECT count() FROM samples WHERE ecg_id = ?", id)
        .await?;
    assert_eq!(rows, 60_000, "every sample exactly once");
    stack.assert_one_row_per_chunk(id).await?;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_and_malformed_chunks_are_recorded_and_the_partition_keeps_flowing()
-> anyhow::Result<()> {
    let stack = Stack::start("refused").await?;
    let token = stack.token("demo", "demo-secret", None).await?;
    let created: Value = stack
        .http
        .post(format!("{}/v1/ecgs", stack.ingest))
        .bearer_auth(&token)
        .json(&json!({"device_id": "bad-device", "sample_rate_hz": 500, "leads": ["I"]}))
        .send()
        .await?
        .json()
        .await?;
    let id: Uuid = created["id"].as_str().context("id")?.parse()?;

    // A chunk that never went through the gateway, with a NaN in it: the
    // processor must check it itself and record why it refused it.
    let chunk = Chunk {
        header: EcgHeader {
            ecg_id: id,
            tenant: "demo".into(),
            device_id: "bad-device".into(),
            sample_rate_hz: 500.0,
            units: Units::Millivolts,
            started_at: time_now(),
            leads: vec!["I".into()],
        },
        seq: 0,
        is_final: true,
        samples: Signal::from_vecs(vec![vec![1.0, f64::NAN]]),
    };
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", ecg_e2e::kafka_brokers())
        .create()?;
    let key = id.to_string();
    // First a message that once panicked arrow-ipc (a fuzzer finding): it
    // must become a failed chunk, and the partition must keep flowing.
    let poison = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/artifacts/chunk_arrow/finding-arrow-buffer-outside-body.arrows"),
    )?;
    let payload = chunk.encode()?;
    let mut sent = Vec::new();
    for bytes in [&poison, &payload] {
        let headers = OwnedHeaders::new().insert(Header {
            key: "traceparent",
            value: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        });
        let delivery = producer
            .send(
                FutureRecord::to(&stack.topic)
                    .key(&key)
                    .payload(bytes)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
        sent.push((delivery.partition, delivery.offset, bytes.clone()));
    }

    wait_for(Duration::from_secs(30), "the ECG to be failed", || async {
        Ok(status(&stack, &token, id, "").await?["status"] == "failed")
    })
    .await?;
    let with_reason = stack
        .count(
            "SELECT count() FROM failed_chunks WHERE ecg_id = ? AND reason LIKE '%/samples/I/1%NaN%'",
            id,
        )
        .await?;
    assert_eq!(with_reason, 1);
    let malformed = stack
        .count(
            "SELECT count() FROM failed_chunks WHERE ecg_id = ? AND reason LIKE '%malformed Arrow IPC stream%'",
            id,
        )
        .await?;
    assert_eq!(malformed, 1);

    // Both are in the dead-letter topic, unchanged, with why and where from.
    let dead = dead_letters(&stack, 2).await?;
    for (partition, offset, bytes) in &sent {
        let m = dead
            .iter()
            .find(|m| m.header(dlq::headers::SOURCE_OFFSET) == Some(offset.to_string()))
            .with_context(|| format!("offset {offset} not dead-lettered"))?;
        assert_eq!(
            m.payload.as_deref(),
            Some(bytes.as_slice()),
            "payload unchanged"
        );
        assert_eq!(m.key.as_deref(), Some(key.as_bytes()), "key unchanged");
        assert_eq!(
            m.header(dlq::headers::SOURCE_PARTITION),
            Some(partition.to_string())
        );
        assert_eq!(
            m.header(dlq::headers::SOURCE_TOPIC),
            Some(stack.topic.clone())
        );
        assert_eq!(
            m.header("traceparent").as_deref(),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            "original headers kept"
        );
        let reason = m.header(dlq::headers::REASON).context("no reason")?;
        assert!(
            reason.contains("NaN") || reason.contains("malformed Arrow IPC stream"),
            "{reason}"
        );
    }

    // The status says which chunks failed and why, the undecodable one too
    // (its tenant comes from the registry, via the message key).
    let status = status(&stack, &token, id, "").await?;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["failed_chunks_count"], 2, "{status}");
    let reasons: Vec<&str> = status["failed_chunks"]
        .as_array()
        .context("failed_chunks")?
        .iter()
        .filter_map(|f| f["reason"].as_str())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("NaN")), "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("malformed Arrow IPC stream")),
        "{reasons:?}"
    );
    stack.stop().await
}

/// A message read back from the dead-letter topic.
struct DeadLetter {
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl DeadLetter {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Reads `<topic>.dlq` from the start until `want` messages are in.
async fn dead_letters(stack: &Stack, want: usize) -> anyhow::Result<Vec<DeadLetter>> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.brokers)
        .set("group.id", format!("{}-dlq-reader", stack.topic))
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&format!("{}.dlq", stack.topic)])?;
    let mut out = Vec::new();
    while out.len() < want {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .context("waiting for dead letters")??;
        out.push(DeadLetter {
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            headers: m.headers().map_or_else(Vec::new, |hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            }),
        });
    }
    Ok(out)
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
