//! `POST /oauth/token` under a flood of bad credentials, through the API's
//! real router and server (`ecg_query_api::serve`) over TCP.
//!
//! Eight attackers, each from its own loopback address (127.0.0.2-9), send
//! 1,000 requests a second between them for 20 s: half with made-up client
//! ids, half with the real clients' ids and wrong secrets. Meanwhile the
//! `demo` client, from 127.0.0.1, asks for a token every 500 ms. Every one of
//! its requests must get a token within a second. Without the endpoint's
//! limits every bad request costs an argon2 hash (~35 ms of CPU here), 35
//! cores' worth at this rate, and the legitimate requests queue behind them.
//!
//! The server runs on its own runtime thread, as it would in its own
//! process; the clients speak HTTP/1.1 by hand so each can pick its source
//! address.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecg_query_api::{AppState, Config};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

const FLOOD_PER_SECOND: u64 = 1_000;
const FLOOD_FOR: Duration = Duration::from_secs(20);
const ATTACKERS: u8 = 8;
const CONNECTIONS_PER_ATTACKER: u64 = 8;
const LEGIT_EVERY: Duration = Duration::from_millis(500);
const LEGIT_WITHIN: Duration = Duration::from_secs(1);

/// One keep-alive HTTP/1.1 connection from a chosen source address.
struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    async fn open(from: Ipv4Addr, to: SocketAddr) -> io::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
        let stream = socket.connect(to).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
        })
    }

    /// Posts a token form; returns the status and body.
    async fn token(&mut self, form: &str) -> io::Result<(u16, String)> {
        let request = format!(
            "POST /oauth/token HTTP/1.1\r\nHost: query-api\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{form}",
            form.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let mut length = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().map_err(io::Error::other)?;
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

fn form(id: &str, secret: &str) -> String {
    format!("grant_type=client_credentials&client_id={id}&client_secret={secret}")
}

/// Starts the API on its own two-worker runtime; returns its address and
/// what stops it.
fn start_api(
    dir: &tempfile::TempDir,
) -> (SocketAddr, CancellationToken, std::thread::JoinHandle<()>) {
    let mut config = Config::default();
    config.auth.key_file = dir.path().join("signing-key.pem");
    // Never contacted: only the token endpoint is called.
    config.clickhouse.url = "http://127.0.0.1:1".into();
    let state = AppState::new(&config).unwrap();
    let shutdown = CancellationToken::new();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn({
        let shutdown = shutdown.clone();
        move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                ecg_query_api::serve(listener, state, shutdown)
                    .await
                    .unwrap();
            });
        }
    });
    (addr_rx.recv().unwrap(), shutdown, server)
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    io_errors: u64,
    latencies: Vec<Duration>,
}

/// One attacker connection: requests on a fixed schedule (catching up when
/// answers were slow), so the flood's rate does not depend on them.
async fn attack(
    from: Ipv4Addr,
    api: SocketAddr,
    first: u64,
    period: Duration,
    start: Instant,
    tally: Arc<Mutex<Tally>>,
) {
    let mut connection = Connection::open(from, api).await.unwrap();
    let mut local = Tally::default();
    for i in 0.. {
        let at = start + period * i;
        if at >= start + FLOOD_FOR {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let n = first + i as u64;
        let body = match n % 4 {
            0 => form("demo", "guess"),
            1 => form("other", "guess"),
            // A fresh made-up id every time: the rate-limit tables must stay
            // bounded and the id must not get around the limits.
            _ => form(&format!("intruder-{n}"), "guess"),
        };
        let sent = Instant::now();
        match connection.token(&body).await {
            Ok((status, _)) => {
                *local.statuses.entry(status).or_default() += 1;
                local.latencies.push(sent.elapsed());
            }
            Err(_) => {
                local.io_errors += 1;
                connection = Connection::open(from, api).await.unwrap();
            }
        }
    }
    let mut tally = tally.lock().unwrap();
    for (status, count) in local.statuses {
        *tally.statuses.entry(status).or_default() += count;
    }
    tally.io_errors += local.io_errors;
    tally.latencies.extend(local.latencies);
}

/// The legitimate client: a fresh connection per token, as a client
/// refreshing its token now and then would open.
async fn legit_token(api: SocketAddr) -> (u16, String, Duration) {
    let sent = Instant::now();
    let mut connection = Connection::open(Ipv4Addr::LOCALHOST, api).await.unwrap();
    let (status, body) = connection
        .token(&form("demo", "demo-secret"))
        .await
        .unwrap();
    (status, body, sent.elapsed())
}

/// Nearest-rank percentile.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legitimate_clients_get_tokens_within_a_second_during_a_bad_secret_flood() {
    let dir = tempfile::tempdir().unwrap();
    let (api, shutdown, server) = start_api(&dir);

    // The client has used the service before the attack starts.
    let (status, body, _) = legit_token(api).await;
    assert_eq!(status, 200, "{body}");

    let tally = Arc::new(Mutex::new(Tally::default()));
    let connections = u64::from(ATTACKERS) * CONNECTIONS_PER_ATTACKER;
    let period = Duration::from_secs(1) * connections as u32 / FLOOD_PER_SECOND as u32;
    let start = Instant::now();
    let mut attackers = Vec::new();
    for attacker in 0..ATTACKERS {
        let from = Ipv4Addr::new(127, 0, 0, 2 + attacker);
        for c in 0..CONNECTIONS_PER_ATTACKER {
            let first = (u64::from(attacker) * CONNECTIONS_PER_ATTACKER + c) * 1_000_000;
            // Spread the connections' schedules over one period.
            let offset = period * (attacker as u32 * CONNECTIONS_PER_ATTACKER as u32 + c as u32)
                / connections as u32;
            attackers.push(tokio::spawn(attack(
                from,
                api,
                first,
                period,
                start + offset,
                tally.clone(),
            )));
        }
    }

    let mut legit = Vec::new();
    let rounds = (FLOOD_FOR.as_millis() / LEGIT_EVERY.as_millis()) as u32;
    for round in 0..rounds {
        tokio::time::sleep_until((start + LEGIT_EVERY * round).into()).await;
        legit.push(tokio::spawn(legit_token(api)));
    }
    let mut legit_latencies = Vec::new();
    let mut legit_failures = Vec::new();
    for answer in legit {
        let (status, body, latency) = answer.await.unwrap();
        legit_latencies.push(latency);
        if status != 200 || latency > LEGIT_WITHIN {
            legit_failures.push(format!("{status} after {latency:?}: {body}"));
        }
    }
    for attacker in attackers {
        attacker.await.unwrap();
    }
    let elapsed = start.elapsed();
    shutdown.cancel();
    server.join().unwrap();

    let tally = Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap();
    let sent: u64 = tally.statuses.values().sum::<u64>() + tally.io_errors;
    legit_latencies.sort_unstable();
    let mut bad_latencies = tally.latencies.clone();
    bad_latencies.sort_unstable();
    let count = |status| tally.statuses.get(&status).copied().unwrap_or(0);
    println!(
        "flood: {sent} bad requests in {elapsed:.1?} ({:.0}/s): {} x 401, {} x 429, {} x 503, \
         other {:?}, {} connection errors; answered in p50 {:?}, p99 {:?}",
        sent as f64 / elapsed.as_secs_f64(),
        count(401),
        count(429),
        count(503),
        tally
            .statuses
            .iter()
            .filter(|(s, _)| ![401, 429, 503].contains(*s))
            .collect::<Vec<_>>(),
        tally.io_errors,
        percentile(&bad_latencies, 50.0),
        percentile(&bad_latencies, 99.0),
    );
    println!(
        "legitimate: {} tokens, latency p50 {:?}, p99 {:?}, max {:?}",
        legit_latencies.len(),
        percentile(&legit_latencies, 50.0),
        percentile(&legit_latencies, 99.0),
        legit_latencies.last().unwrap(),
    );

    assert!(
        legit_failures.is_empty(),
        "legitimate requests failed or were slow: {legit_failures:#?}"
    );
    // The flood really happened at (nearly) the intended rate...
    let intended = FLOOD_PER_SECOND * FLOOD_FOR.as_secs();
    assert!(
        sent * 10 >= intended * 9,
        "only {sent} of {intended} bad requests were sent"
    );
    // ...and was answered as it should: never a token, only refusals.
    assert_eq!(
        count(401) + count(429) + count(503),
        sent,
        "{:?}",
        tally.statuses
    );
    assert!(count(429) > sent / 2, "the rate limits engaged");
    assert!(count(401) > 0, "some bad secrets were checked and refused");
}
