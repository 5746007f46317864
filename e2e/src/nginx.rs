//! A real nginx (Debian's) in front of the services, configured from the
//! shipped template `deploy/nginx/nginx.conf.template`, the very file
//! docker-compose.yml gives the nginx image, rendered for a temp dir: its
//! routing, TLS and upload settings are what the tests exercise.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// The shipped template.
pub fn template_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx/nginx.conf.template")
}

/// Fills every `${ECG_*}` of `template` from `vars`, as the nginx image's
/// envsubst step does with `NGINX_ENVSUBST_FILTER=^ECG_`. An `${ECG_*}`
/// without a value is an error here: envsubst would leave it in place and
/// nginx would stop on it with a less clear message.
pub fn render(template: &str, vars: &BTreeMap<&str, String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find("${ECG_") {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find('}')
            .with_context(|| format!("unterminated ${{ at {:?}", &rest[at..]))?;
        let name = &rest[at + 2..at + end];
        // envsubst substitutes names only; anything else stays as written.
        if !name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            out.push_str(&rest[..at + end + 1]);
            rest = &rest[at + end + 1..];
            continue;
        }
        let value = vars
            .get(name)
            .with_context(|| format!("the template needs {name}, which has no value"))?;
        out.push_str(value);
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The nginx executable: `nginx` on PATH, else Debian's /usr/sbin/nginx.
pub fn executable() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nginx"));
    on_path
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|p| p.is_file())
        .context(
            "nginx is not installed: `apt-get install nginx` (Debian's package; `make test` \
             installs it, through dev/system-packages.sh)",
        )
}

/// The template rendered into a temp dir, with a self-signed certificate
/// for `localhost` and two free loopback ports.
#[derive(Debug)]
pub struct Site {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    /// The certificate nginx serves, for clients to trust.
    pub cert_pem: String,
    pub https_port: u16,
    pub http_port: u16,
}

impl Site {
    /// Renders the shipped template with the two ingest replicas and
    /// query-api at `ingest` and `query_api` (`host:port`).
    pub fn render(ingest: [&str; 2], query_api: &str) -> anyhow::Result<Site> {
        let dir = tempfile::tempdir()?;
        // Run as root, nginx's workers drop to `nobody`, and they write
        // proxy temp files under this dir.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        }
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        std::fs::write(&cert, certified.cert.pem())?;
        std::fs::write(&key, certified.signing_key.serialize_pem())?;
        let (https_port, http_port) = (free_port()?, free_port()?);
        let path = |p: &Path| p.display().to_string();
        let vars = BTreeMap::from([
            ("ECG_NGINX_HTTPS_LISTEN", format!("127.0.0.1:{https_port}")),
            ("ECG_NGINX_HTTP_LISTEN", format!("127.0.0.1:{http_port}")),
            ("ECG_NGINX_TLS_CERT", path(&cert)),
            ("ECG_NGINX_TLS_KEY", path(&key)),
            ("ECG_NGINX_INGEST_1", ingest[0].to_string()),
            ("ECG_NGINX_INGEST_2", ingest[1].to_string()),
            ("ECG_NGINX_QUERY_API", query_api.to_string()),
            ("ECG_NGINX_RUN_DIR", path(dir.path())),
        ]);
        let template = std::fs::read_to_string(template_path())?;
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, render(&template, &vars)?)?;
        Ok(Site {
            dir,
            conf,
            cert_pem: certified.cert.pem(),
            https_port,
            http_port,
        })
    }

    /// `nginx -t`: the configuration parses and its files load.
    pub fn check(&self) -> anyhow::Result<()> {
        let output = Command::new(executable()?)
            .arg("-t")
            .args(self.prefix_args())
            .output()
            .context("running nginx -t")?;
        if !output.status.success() {
            bail!(
                "nginx -t failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    fn prefix_args(&self) -> [String; 4] {
        [
            "-p".into(),
            self.dir.path().display().to_string(),
            "-c".into(),
            self.conf.display().to_string(),
        ]
    }
}

/// A running nginx; stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Option<Child>,
    pub site: Site,
    /// `https://localhost:<port>`.
    pub https: String,
    /// `http://127.0.0.1:<port>` (redirects to HTTPS).
    pub http: String,
    /// nginx's stdout and stderr: the access log (with each request's
    /// upstream address) and the error log.
    pub log: PathBuf,
}

impl Nginx {
    /// Starts nginx on `site` in the foreground and waits until it answers
    /// over HTTPS.
    pub async fn start(site: Site) -> anyhow::Result<Nginx> {
        site.check()?;
        let log = site.dir.path().join("nginx.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(executable()?)
            .args(site.prefix_args())
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting nginx")?;
        let mut nginx = Nginx {
            child: Some(child),
            https: format!("https://localhost:{}", site.https_port),
            http: format!("http://127.0.0.1:{}", site.http_port),
            site,
            log,
        };
        let client = nginx.client()?;
        let health = format!("{}/healthz", nginx.https);
        let until = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = nginx
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("nginx exited ({status}): {}", nginx.log_text());
            }
            if client
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(nginx);
            }
            if tokio::time::Instant::now() > until {
                bail!("nginx not answering after 20 s: {}", nginx.log_text());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A client that trusts the site's certificate and reaches `localhost`
    /// at 127.0.0.1 (where nginx listens), never redirected.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.site.https_port));
        Ok(reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(
                self.site.cert_pem.as_bytes(),
            )?)
            .resolve("localhost", addr)
            .redirect(reqwest::redirect::Policy::none())
            .build()?)
    }

    /// Everything nginx logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Requests whose access-log line names upstream `addr` (`host:port`).
    pub fn requests_to(&self, addr: &str) -> usize {
        let needle = format!("upstream={addr} ");
        self.log_text()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM lets the master stop its workers; SIGKILL would leave
        // them running, holding the ports.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..100 {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
