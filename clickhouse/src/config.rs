//! Connection settings for ClickHouse, shared by every service's config.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where ClickHouse is, which database holds ecg-stream's tables, and who
/// connects. With `password_file` set, the password is that file's content
/// (without its final line break), read when the configuration is loaded:
/// a secret mounted as a file never goes through the environment.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ClickHouseSettings", into = "ClickHouseSettings")]
pub struct ClickHouseConfig {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database holding the tables; created by the migrations if missing.
    pub database: String,
    /// User name.
    pub user: String,
    /// Password (never logged).
    pub password: String,
    /// Where [`ClickHouseConfig::password`] was read from, if from a file.
    pub password_file: Option<PathBuf>,
    /// Whether a service applies missing migrations at start (with a user
    /// allowed DDL) or only checks that the schema is up to date and stops
    /// if it is not (see [`crate::migrate::ensure`]).
    pub migrate: bool,
}

/// [`ClickHouseConfig`] as written in a configuration: the password, or
/// the file that holds it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ClickHouseSettings {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`.
    url: String,
    /// Database holding the tables; created by the migrations if missing.
    database: String,
    /// User name.
    user: String,
    /// Password (never logged); empty when `password_file` is set.
    password: String,
    /// A file holding the password (a mounted secret), read at load.
    password_file: Option<PathBuf>,
    /// Apply missing migrations at start (`true`, needs a user allowed
    /// DDL), or only check the schema is up to date (`false`).
    migrate: bool,
}

impl Default for ClickHouseSettings {
    fn default() -> Self {
        ClickHouseConfig::default().into()
    }
}

impl TryFrom<ClickHouseSettings> for ClickHouseConfig {
    type Error = String;

    fn try_from(s: ClickHouseSettings) -> Result<Self, String> {
        let password = match &s.password_file {
            None => s.password,
            Some(_) if !s.password.is_empty() => {
                return Err("set clickhouse.password or clickhouse.password_file, not both".into());
            }
            Some(path) => read_password(path)
                .map_err(|e| format!("reading clickhouse.password_file {}: {e}", path.display()))?,
        };
        Ok(ClickHouseConfig {
            url: s.url,
            database: s.database,
            user: s.user,
            password,
            password_file: s.password_file,
            migrate: s.migrate,
        })
    }
}

impl From<ClickHouseConfig> for ClickHouseSettings {
    /// Serialized back (figment's defaults), a password read from a file
    /// stays in its file: only the path is written out.
    fn from(c: ClickHouseConfig) -> Self {
        ClickHouseSettings {
            password: if c.password_file.is_some() {
                String::new()
            } else {
                c.password
            },
            url: c.url,
            database: c.database,
            user: c.user,
            password_file: c.password_file,
            migrate: c.migrate,
        }
    }
}

/// A password file's content without its final line break (`\n` or
/// `\r\n`), as `echo` and editors leave one.
pub fn read_password(path: &std::path::Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let password = text
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&text);
    Ok(password.to_string())
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            database: "ecg".into(),
            user: "default".into(),
            password: String::new(),
            password_file: None,
            migrate: true,
        }
    }
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("password_file", &self.password_file)
            .field("migrate", &self.migrate)
            .finish()
    }
}

impl ClickHouseConfig {
    /// A client bound to [`ClickHouseConfig::database`].
    pub fn client(&self) -> clickhouse::Client {
        self.server_client().with_database(&self.database)
    }

    /// A client bound to no database (for `CREATE DATABASE`).
    pub fn server_client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_password(&self.password)
    }
}

#[cfg(test)]
impl ClickHouseConfig {
    /// A database named after the test, on the ClickHouse of `make test`
    /// (`ECG_TEST_CLICKHOUSE_URL`); not created yet.
    pub(crate) fn for_test(name: &str) -> Self {
        ClickHouseConfig {
            url: std::env::var("ECG_TEST_CLICKHOUSE_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:8123".into()),
            database: format!(
                "test_{name}_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            ..ClickHouseConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};

    fn load(toml: &str) -> Result<ClickHouseConfig, Box<figment::Error>> {
        Figment::from(Serialized::defaults(ClickHouseConfig::default()))
            .merge(Toml::string(toml))
            .extract()
            .map_err(Box::new)
    }

    #[test]
    fn the_password_is_read_from_its_file_and_stays_there() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clickhouse-ingest");
        std::fs::write(&file, "s3cr3t pass\r\n").unwrap();
        let config = load(&format!(
            "user = \"ingest\"\npassword_file = \"{}\"\nmigrate = false",
            file.display()
        ))
        .unwrap();
        assert_eq!(config.password, "s3cr3t pass");
        assert_eq!(config.user, "ingest");
        assert!(!config.migrate);
        assert!(!format!("{config:?}").contains("s3cr3t"));
        // Serialized back (as figment's defaults are), only the path.
        let again = Figment::from(Serialized::defaults(config.clone()))
            .extract::<ClickHouseSettings>()
            .unwrap();
        assert_eq!(again.password, "");
        assert_eq!(again.password_file.as_deref(), Some(file.as_path()));
        assert_eq!(
            Figment::from(Serialized::defaults(config.clone()))
                .extract::<ClickHouseConfig>()
                .unwrap(),
            config
        );
    }

    #[test]
    fn a_missing_file_or_two_passwords_stop_the_load() {
        let err = load("password_file = \"/nonexistent/clickhouse-x\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reading clickhouse.password_file /nonexistent/clickhouse-x"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "x").unwrap();
        let err = load(&format!(
            "password = \"y\"\npassword_file = \"{}\"",
            file.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("not both"), "{err}");
        assert!(
            load("pasword = \"x\"").is_err(),
            "unknown fields are refused"
        );
        assert_eq!(load("").unwrap(), ClickHouseConfig::default());
    }
}
