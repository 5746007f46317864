//! The services' own ClickHouse users (`ecg_clickhouse::service_users`) on a
//! real server: a private ClickHouse started with the users.d document that
//! `ecg-migrate services` prints. The migrations are applied as `default`
//! (as `ecg-migrate` is), then the gateway, the processor and the query API
//! each connect as their own user: a stream with a gap, a refused chunk and
//! an idempotent upload goes through to exact insights, and each user is
//! refused whatever its service does not do.

use std::time::Duration;

use clickhouse::Client;
use ecg_clickhouse::ClickHouseConfig;
use ecg_clickhouse::service_users::{Service, ServiceUser, users_xml};
use ecg_e2e::clickhouse::PrivateClickHouse;
use ecg_e2e::{ServiceLogins, Stack};
use serde_json::json;

const DATABASE: &str = "ecg";

/// A sine with a QRS-like spike every 0.6 s at 500 Hz (so there are beats).
fn wave(n: usize, phase: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let i = i + phase;
            let spike = match i % 300 {
                0 => 1.5,
                1 => 0.5,
                2 | 3 => -0.4,
                _ => 0.0,
            };
            let v = 0.1 * (i as f64 / 9.0).sin() + spike;
            (v * 1000.0).round() / 1000.0
        })
        .collect()
}

/// The error of `sql` run by `client`; panics if it succeeds.
async fn refused(client: &Client, sql: &str) -> String {
    match client.query(sql).execute().await {
        Ok(()) => panic!("{sql}: was allowed"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_service_runs_as_its_own_user_which_may_do_nothing_else() -> anyhow::Result<()> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let users: Vec<ServiceUser> = Service::ALL
        .into_iter()
        .map(|service| ServiceUser {
            service,
            user: service.default_user().into(),
            password: format!("pw-{}-{run}", service.name()),
        })
        .collect();
    let server =
        PrivateClickHouse::start("service_users", &users_xml(DATABASE, &users, None)?).await?;
    let admin = ClickHouseConfig {
        url: server.url.clone(),
        database: DATABASE.into(),
        ..ClickHouseConfig::default()
    };
    let login = |service: Service| {
        let u = users.iter().find(|u| u.service == service).unwrap();
        ClickHouseConfig {
            user: u.user.clone(),
            password: u.password.clone(),
            ..admin.clone()
        }
    };

    // Before `ecg-migrate`: a service user cannot make the schema, and says
    // what to run instead, whether it may try (the default) or only checks.
    let err = format!(
        "{:#}",
        ecg_clickhouse::migrate::ensure(&login(Service::Ingest))
            .await
            .unwrap_err()
    );
    assert!(
        err.contains("ClickHouse user ingest may not apply them")
            && err.contains("run `ecg-migrate`")
            && err.contains("Not enough privileges"),
        "{err}"
    );
    let check_only = ClickHouseConfig {
        migrate: false,
        ..login(Service::Processor)
    };
    let err = ecg_clickhouse::migrate::ensure(&check_only)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is not up to date") && err.contains("run `ecg-migrate`"),
        "{err}"
    );

    // The migrations as `default` (what `ecg-migrate` does), then each
    // service as its own user; the gateway only checks the schema.
    let stack = Stack::start_with_logins(
        "service_users",
        admin.clone(),
        ServiceLogins {
            ingest: ClickHouseConfig {
                migrate: false,
                ..login(Service::Ingest)
            },
            processor: login(Service::Processor),
            query_api: login(Service::QueryApi),
        },
    )
    .await?;
    let token = stack.token("demo", "demo-secret", None).await?;

    // A stream whose chunks arrive 0, 2 (final), 1: chunk 2 waits in
    // `waiting_blocks` and is deleted there once placed; a final chunk
    // before the end is known makes the gateway read the stored seqs.
    let leads = vec!["I".to_string(), "II".to_string()];
    let id = stack
        .open_ecg(
            &token,
            json!({"device_id": "watch-1", "sample_rate_hz": 500, "leads": leads,
                   "started_at": "2026-11-21T10:00:00Z"}),
        )
        .await?;
    let signal = wave(3000, 0);
    let inverted: Vec<f64> = wave(3000, 77).iter().map(|v| -v).collect();
    for seq in [0u32, 2, 1] {
        let part = |v: &[f64]| v[seq as usize * 1000..(seq as usize + 1) * 1000].to_vec();
        let samples = json!({"I": part(&signal), "II": part(&inverted)});
        stack.send_chunk(&token, id, seq, samples, seq == 2).await?;
    }
    let insights = stack
        .insights_when_complete(&token, id, Duration::from_secs(60))
        .await?;
    stack
        .assert_exact(&insights, id, &leads, &[&signal, &inverted])
        .await?;
    let waiting = stack
        .count("SELECT count() FROM waiting_blocks WHERE ecg_id = ?", id)
        .await?;
    assert_eq!(
        waiting, 0,
        "the placed chunk was deleted from waiting_blocks"
    );

    // A chunk the processor refuses: written to `failed_chunks`.
    let gap = stack
        .open_ecg(
            &token,
            json!({"device_id": "watch-2", "sample_rate_hz": 500, "leads": ["I"]}),
        )
        .await?;
    stack.send_refused_chunk("demo", gap, 0).await?;
    ecg_e2e::wait_for(Duration::from_secs(30), "the refused chunk", || async {
        Ok(stack
            .count("SELECT count() FROM failed_chunks WHERE ecg_id = ?", gap)
            .await?
            > 0)
    })
    .await?;
    let (status, body) = stack
        .get_json(Some(&token), &format!("/v1/ecgs/{gap}"))
        .await?;
    assert_eq!((status, &body["status"]), (200, &json!("failed")), "{body}");

    // A whole recording with an Idempotency-Key, sent twice: the key is
    // written and read back by the gateway's user.
    let upload = json!({"device_id": "holter-1", "sample_rate_hz": 500, "leads": ["I"],
                        "signal": {"I": wave(1500, 5)}});
    let key = format!("key-{run}");
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = stack
            .http
            .post(format!("{}/v1/ecgs", stack.ingest))
            .bearer_auth(&token)
            .header("Idempotency-Key", &key)
            .json(&upload)
            .send()
            .await?;
        let status = r.status().as_u16();
        let replayed = r.headers().contains_key("idempotent-replayed");
        let body: serde_json::Value = r.json().await?;
        answers.push((status, replayed, body["id"].clone()));
    }
    assert_eq!(answers[0].0, 202, "{answers:?}");
    assert_eq!(
        (answers[1].0, answers[1].1, &answers[1].2),
        (202, true, &answers[0].2),
        "the retry got the first ECG"
    );
    assert!(
        stack.processor_running(),
        "the processor stopped (a query its user may not run?)"
    );

    // What each user may not do: another service's writes, DDL, access
    // management; refused by privilege, and nothing changed.
    let as_user = |service: Service| login(service).client();
    let mut forbidden = vec![
        (
            Service::QueryApi,
            "INSERT INTO ecgs (tenant, ecg_id) VALUES ('demo', generateUUIDv4())",
        ),
        (
            Service::QueryApi,
            "ALTER TABLE waiting_blocks DELETE WHERE 1",
        ),
        (
            Service::Ingest,
            "INSERT INTO blocks (tenant) VALUES ('demo')",
        ),
        (
            Service::Ingest,
            "INSERT INTO failed_chunks (tenant) VALUES ('demo')",
        ),
        (Service::Ingest, "ALTER TABLE waiting_blocks DELETE WHERE 1"),
        (Service::Ingest, "SELECT count() FROM ecg_progress"),
        (
            Service::Processor,
            "INSERT INTO ecgs (tenant, ecg_id) VALUES ('demo', generateUUIDv4())",
        ),
        (
            Service::Processor,
            "INSERT INTO idempotency_keys (tenant) VALUES ('demo')",
        ),
        (Service::Processor, "ALTER TABLE blocks DELETE WHERE 1"),
        (Service::Processor, "TRUNCATE TABLE waiting_blocks"),
        (Service::Processor, "DROP TABLE blocks"),
    ];
    for service in Service::ALL {
        for sql in [
            "CREATE TABLE notes (tenant String) ENGINE = MergeTree ORDER BY tenant",
            "CREATE VIEW everything AS SELECT * FROM blocks",
            "ALTER TABLE ecgs ADD COLUMN note String",
            "DROP TABLE ecgs",
            "DROP DATABASE ecg",
            "RENAME TABLE ecgs TO ecgs_old",
            "CREATE USER intruder IDENTIFIED BY 'x'",
        ] {
            forbidden.push((service, sql));
        }
    }
    let all = admin.client();
    let rows = || async {
        let mut counts = Vec::new();
        for table in ["ecgs", "blocks", "waiting_blocks", "idempotency_keys"] {
            let n: u64 = all
                .query(&format!("SELECT count() FROM {table}"))
                .fetch_one()
                .await?;
            counts.push(n);
        }
        anyhow::Ok(counts)
    };
    let before = rows().await?;
    for (service, sql) in forbidden {
        let error = refused(&as_user(service), sql).await;
        assert!(
            error.contains("Not enough privileges"),
            "{service:?}: {sql}: refused for another reason: {error}"
        );
    }
    assert_eq!(before, rows().await?, "a refused statement changed rows");
    let tables: u64 = all
        .query("SELECT count() FROM system.tables WHERE database = ? AND name IN ('notes', 'everything', 'ecgs_old')")
        .bind(DATABASE)
        .fetch_one()
        .await?;
    assert_eq!(tables, 0);

    stack.stop().await
}
