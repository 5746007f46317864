//! The analysts' ClickHouse logins (`ecg_clickhouse::access`) on a real
//! server: a private ClickHouse started with the users.d document that
//! `ecg-migrate analysts` prints, filled by a real run of the pipeline with
//! ECGs of two tenants. Each analyst reads all of its tenant's rows and none
//! of another's, in every table and view, and can change nothing.

use clickhouse::Client;
use ecg_clickhouse::ClickHouseConfig;
use ecg_clickhouse::access::{Analyst, TENANT_TABLES, TENANT_VIEWS, users_xml};
use ecg_e2e::Stack;
use ecg_e2e::clickhouse::PrivateClickHouse;
use serde_json::json;
use std::time::Duration;

const DATABASE: &str = "ecg";
/// A tenant whose name needs every escape (SQL quote and backslash, XML's
/// five characters, a line break): its one row is written directly.
const AWKWARD: &str = "o'brien\\ & <co>\"\r\n";

/// A sine with a QRS-like spike every 0.6 s at 500 Hz (so there are beats).
fn wave(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
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

fn login(server: &PrivateClickHouse, user: &str, password: &str) -> Client {
    Client::default()
        .with_url(&server.url)
        .with_user(user)
        .with_password(password)
        .with_database(DATABASE)
}

/// Sends, as `tenant` (its token), a complete ECG of two chunks and an
/// ECG with a gap: chunk 0, chunk 2 (which waits in `waiting_blocks`) and
/// a chunk 1 the processor refuses (`failed_chunks`).
async fn send_ecgs(stack: &Stack, tenant: &str, token: &str) -> anyhow::Result<()> {
    let open = json!({"device_id": "watch-1", "sample_rate_hz": 500, "leads": ["I", "II"],
                      "started_at": "2026-11-21T10:00:00Z"});
    let signal = wave(2000);
    let complete = stack.open_ecg(token, open.clone()).await?;
    for seq in 0..2u32 {
        let part = &signal[seq as usize * 1000..(seq as usize + 1) * 1000];
        let samples = json!({"I": part, "II": part});
        stack
            .send_chunk(token, complete, seq, samples, seq == 1)
            .await?;
    }
    stack.wait_complete(token, complete, 4000).await?;

    let gap = stack.open_ecg(token, open).await?;
    for seq in [0, 2] {
        let samples = json!({"I": &signal[..500], "II": &signal[..500]});
        stack.send_chunk(token, gap, seq, samples, false).await?;
    }
    stack.send_refused_chunk(tenant, gap, 1).await?;
    ecg_e2e::wait_for(
        Duration::from_secs(30),
        "a waiting block and a refused chunk",
        || async {
            let waiting = stack
                .count("SELECT count() FROM waiting_blocks WHERE ecg_id = ?", gap)
                .await?;
            let failed = stack
                .count("SELECT count() FROM failed_chunks WHERE ecg_id = ?", gap)
                .await?;
            Ok(waiting > 0 && failed > 0)
        },
    )
    .await
}

/// Writes a row of `tenant`, nothing but its tenant, into each tenant table
/// the run of the pipeline left without one (e.g. `idempotency_keys`: no
/// create here sends the header), so that every filter is put to the test.
async fn fill_empty_tables(all: &Client, tenant: &str) -> anyhow::Result<()> {
    for table in TENANT_TABLES {
        let rows: u64 = all
            .query(&format!("SELECT countIf(tenant = ?) FROM {table}"))
            .bind(tenant)
            .fetch_one()
            .await?;
        if rows == 0 {
            all.query(&format!("INSERT INTO {table} (tenant) VALUES (?)"))
                .bind(tenant)
                .execute()
                .await?;
        }
    }
    Ok(())
}

/// Per table and view: the analyst sees every row of `tenant` that
/// `default` sees, and no other.
async fn assert_sees_only(
    analyst: &Client,
    all: &Client,
    who: &str,
    tenant: &str,
    must_have_rows: bool,
) -> anyhow::Result<()> {
    for table in TENANT_TABLES.iter().chain(TENANT_VIEWS) {
        let (total, others): (u64, u64) = analyst
            .query(&format!(
                "SELECT count(), countIf(tenant != ?) FROM {table}"
            ))
            .bind(tenant)
            .fetch_one()
            .await?;
        // A bare count() too: ClickHouse may answer it from part metadata.
        let bare: u64 = analyst
            .query(&format!("SELECT count() FROM {table}"))
            .fetch_one()
            .await?;
        let theirs: u64 = all
            .query(&format!("SELECT countIf(tenant = ?) FROM {table}"))
            .bind(tenant)
            .fetch_one()
            .await?;
        assert_eq!(others, 0, "{who} sees other tenants' rows in {table}");
        assert_eq!(
            (total, bare),
            (theirs, theirs),
            "{who} sees all of {tenant:?}'s rows in {table}"
        );
        if must_have_rows {
            assert!(
                total > 0,
                "{who}: no rows in {table}: the test proves nothing"
            );
        }
    }
    Ok(())
}

/// The error of `sql` run by `client`; panics if it succeeds.
async fn refused(client: &Client, sql: &str) -> String {
    match client.query(sql).execute().await {
        Ok(()) => panic!("{sql}: was allowed"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn analysts_read_only_their_tenants_rows_and_change_nothing() -> anyhow::Result<()> {
    let password = |tenant: &str| format!("pw-{tenant}-{}", uuid::Uuid::new_v4().simple());
    let analysts = [
        Analyst {
            tenant: "demo".into(),
            user: "analyst_demo".into(),
            password: password("demo"),
        },
        Analyst {
            tenant: "other".into(),
            user: "analyst-other".into(),
            password: password("other"),
        },
        Analyst {
            tenant: AWKWARD.into(),
            user: "analyst_awkward".into(),
            password: password("awkward"),
        },
    ];
    let server =
        PrivateClickHouse::start("analyst_access", &users_xml(DATABASE, &analysts)?).await?;
    let stack = Stack::start_on_clickhouse(
        "analyst_access",
        ClickHouseConfig {
            url: server.url.clone(),
            database: DATABASE.into(),
            ..ClickHouseConfig::default()
        },
    )
    .await?;
    let all = stack.clickhouse.client();
    for (tenant, secret) in [("demo", "demo-secret"), ("other", "other-secret")] {
        let token = stack.token(tenant, secret, None).await?;
        send_ecgs(&stack, tenant, &token).await?;
    }
    for tenant in ["demo", "other"] {
        fill_empty_tables(&all, tenant).await?;
    }
    all.query("INSERT INTO ecgs (tenant, ecg_id, device_id) VALUES (?, generateUUIDv4(), 'x')")
        .bind(AWKWARD)
        .execute()
        .await?;

    // Reads: every table and view, each analyst its own tenant's rows.
    let [demo, other, awkward] = &analysts;
    let as_demo = login(&server, &demo.user, &demo.password);
    let as_other = login(&server, &other.user, &other.password);
    let as_awkward = login(&server, &awkward.user, &awkward.password);
    assert_sees_only(&as_demo, &all, "demo's analyst", "demo", true).await?;
    assert_sees_only(&as_other, &all, "other's analyst", "other", true).await?;
    assert_sees_only(&as_awkward, &all, "the awkward analyst", AWKWARD, false).await?;
    let awkward_ecgs: u64 = as_awkward
        .query("SELECT count() FROM ecgs")
        .fetch_one()
        .await?;
    assert_eq!(awkward_ecgs, 1, "the awkward tenant's filter matches it");

    // The parameterised view reads `blocks` as the analyst: naming another
    // tenant gives nothing.
    let window = "SELECT count() FROM samples_window(tenant = ?, ecg_id = ?, lead = 'I',
                  from = '2000-01-01 00:00:00', to = '2100-01-01 00:00:00')";
    let (theirs, mine): (String, String) = all
        .query(
            "SELECT anyIf(toString(ecg_id), tenant = 'other'), anyIf(toString(ecg_id), tenant = 'demo')
             FROM blocks",
        )
        .fetch_one()
        .await?;
    let through_view = |client: &Client, tenant: &'static str, id: String| {
        let query = client.query(window).bind(tenant).bind(id);
        async move { query.fetch_one::<u64>().await }
    };
    assert_eq!(through_view(&as_demo, "other", theirs.clone()).await?, 0);
    assert!(through_view(&as_demo, "demo", mine).await? > 0);
    assert!(through_view(&all, "other", theirs).await? > 0);

    // Writes, schema changes and lifting the caps: refused, by privilege or
    // by read-only mode, and nothing changed.
    let before: u64 = all.query("SELECT count() FROM ecgs").fetch_one().await?;
    for sql in [
        "INSERT INTO ecgs (tenant, ecg_id) VALUES ('demo', generateUUIDv4())",
        "INSERT INTO ecgs (tenant, ecg_id) SELECT tenant, generateUUIDv4() FROM ecgs",
        "ALTER TABLE blocks DELETE WHERE 1",
        "ALTER TABLE ecgs ADD COLUMN note String",
        "ALTER TABLE ecgs UPDATE device_id = 'x' WHERE 1",
        "TRUNCATE TABLE ecgs",
        "DROP TABLE ecgs",
        "DROP DATABASE ecg",
        "CREATE TABLE notes (tenant String) ENGINE = Memory",
        "CREATE VIEW everything AS SELECT * FROM blocks",
        "CREATE TEMPORARY TABLE notes (tenant String)",
        "RENAME TABLE ecgs TO ecgs_old",
        "OPTIMIZE TABLE blocks FINAL",
        "SELECT count() FROM ecgs SETTINGS max_execution_time = 0",
        "SELECT count() FROM remote('127.0.0.1', 'ecg', 'blocks', 'default', '')",
        "CREATE USER intruder IDENTIFIED BY 'x'",
    ] {
        let error = refused(&as_demo, sql).await;
        assert!(
            error.contains("Not enough privileges") || error.contains("readonly mode"),
            "{sql}: refused for another reason: {error}"
        );
    }
    let after: u64 = all.query("SELECT count() FROM ecgs").fetch_one().await?;
    assert_eq!(before, after);

    // A wrong password, or none, is no login.
    for client in [
        login(&server, &demo.user, "wrong"),
        login(&server, &demo.user, ""),
        login(&server, &demo.user, &other.password),
    ] {
        let error = refused(&client, "SELECT 1").await;
        assert!(error.contains("Authentication failed"), "{error}");
    }

    // The query log holds every user's queries (the services' bind other
    // tenants' ids): closed to analysts, or showing nothing of others.
    all.query("SYSTEM FLUSH LOGS").execute().await?;
    for table in ["system.query_log", "system.processes"] {
        match as_demo
            .query(&format!(
                "SELECT count() FROM {table} WHERE user != currentUser()"
            ))
            .fetch_one::<u64>()
            .await
        {
            Ok(others) => assert_eq!(others, 0, "{table} shows other users' queries"),
            Err(e) => assert!(e.to_string().contains("Not enough privileges"), "{e}"),
        }
    }
    // Both servers are configured to require the grant (dev/clickhouse_server.py,
    // deploy/clickhouse/access.xml): refused it is.
    let error = refused(&as_demo, "SELECT count() FROM system.query_log").await;
    assert!(error.contains("Not enough privileges"), "{error}");

    stack.stop().await
}
