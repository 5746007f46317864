//! ClickHouse users of the services, one per service, each granted only
//! what that service's queries in this crate need. [`users_xml`] writes
//! them as a users.d document (ClickHouse's `users.xml` format), with
//! SHA-256 password hashes; with an admin password it also sets the one of
//! `default`, the user that runs `ecg-migrate` (compose).
//!
//! Guarantee: a service user can run the reads and writes of its service
//! and nothing else of ecg-stream's database: no DDL (`CREATE`, `ALTER ...
//! ADD`, `DROP`, `TRUNCATE`), no write to another service's tables. So a
//! service needs `ecg-migrate` to have run first as `default` (or another
//! user allowed DDL); at start it only reads `schema_migrations`
//! ([`crate::migrate::ensure`]).
//!
//! [`GRANTS`] is kept by hand next to the functions it covers: a query added
//! to a table module that a service calls, on a table or with a privilege
//! not listed, fails that service's end-to-end test
//! (`e2e/tests/service_users.rs` runs the pipeline as these users).
//!
//! Limits: the grants name tables, not columns; `query_api` reads every
//! table and view of the database (it serves every tenant, filtering by the
//! token's tenant in its queries); the users may connect from any address
//! (who reaches the server at all is the network's business).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

use crate::access::{AccessError, check_user, is_identifier, read_secret, sha256_hex, xml_text};

/// A service that connects to ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    Ingest,
    Processor,
    QueryApi,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Ingest, Service::Processor, Service::QueryApi];

    /// The service's name, as its binary is named.
    pub fn name(self) -> &'static str {
        match self {
            Service::Ingest => "ingest",
            Service::Processor => "processor",
            Service::QueryApi => "query-api",
        }
    }

    /// The ClickHouse user name a service gets unless its list names another.
    pub fn default_user(self) -> &'static str {
        match self {
            Service::Ingest => "ingest",
            Service::Processor => "processor",
            Service::QueryApi => "query_api",
        }
    }

    /// What the service may do: `(table, privileges)`, `*` for every table
    /// and view of the database.
    pub fn grants(self) -> &'static [(&'static str, &'static str)] {
        GRANTS
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, g)| *g)
            .unwrap_or(&[])
    }
}

/// Each service's privileges, from the queries it runs through this crate:
///
/// - ingest (`ingest/src/registry.rs`): `ecgs::insert`, `ecgs::latest`,
///   `idempotency::insert`, `idempotency::first`, `blocks::highest_seq`
///   (reads `blocks` and `waiting_blocks`).
/// - processor (`processor/src/sink.rs`): `blocks::insert`, `read`,
///   `last_blocks`, `checkpoints`, `waiting_chunks`, `fingerprints` and
///   `delete_waiting` (a lightweight `DELETE`, which needs `ALTER DELETE`),
///   `progress::insert` and `finals`, `failed_chunks::insert`,
///   `ecgs::owners`.
/// - query-api: reads only, of every table and view.
///
/// Every service reads `schema_migrations` at start ([`crate::migrate::ensure`]).
pub const GRANTS: &[(Service, &[(&str, &str)])] = &[
    (
        Service::Ingest,
        &[
            ("ecgs", "SELECT, INSERT"),
            ("idempotency_keys", "SELECT, INSERT"),
            ("blocks", "SELECT"),
            ("waiting_blocks", "SELECT"),
            ("schema_migrations", "SELECT"),
        ],
    ),
    (
        Service::Processor,
        &[
            ("blocks", "SELECT, INSERT"),
            ("waiting_blocks", "SELECT, INSERT, ALTER DELETE"),
            ("ecg_progress", "SELECT, INSERT"),
            ("failed_chunks", "INSERT"),
            ("ecgs", "SELECT"),
            ("schema_migrations", "SELECT"),
        ],
    ),
    (Service::QueryApi, &[("*", "SELECT")]),
];

/// One service's login.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUser {
    pub service: Service,
    /// The ClickHouse user name.
    pub user: String,
    /// The password (only its SHA-256 goes into the document; never logged).
    pub password: String,
}

impl std::fmt::Debug for ServiceUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceUser")
            .field("service", &self.service)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The users.d document of the services' logins to `database`. With
/// `admin_password`, `default` is replaced by a user of that password,
/// allowed everything (DDL, access management): the one `ecg-migrate` and
/// an operator use. Without it `default` is left as the server has it (the
/// local stack's, passwordless on 127.0.0.1).
pub fn users_xml(
    database: &str,
    users: &[ServiceUser],
    admin_password: Option<&str>,
) -> Result<String, AccessError> {
    if !is_identifier(database) {
        return Err(AccessError::Database(database.to_string()));
    }
    let mut seen = std::collections::HashSet::new();
    for u in users {
        check_user(&u.user)?;
        if !seen.insert(u.user.as_str()) {
            return Err(AccessError::DuplicateUser(u.user.clone()));
        }
        if u.password.is_empty() {
            return Err(AccessError::EmptyPassword(u.user.clone()));
        }
    }
    if admin_password == Some("") {
        return Err(AccessError::EmptyPassword("default".into()));
    }
    // `write!` into a String cannot fail: the results are ignored.
    let mut x = String::new();
    x.push_str(
        "<!-- Written by `ecg-migrate services`: the services' ClickHouse logins, each with\n     \
         only the privileges its queries need (clickhouse/README.md, \"Service users\").\n     \
         Regenerate, do not edit. -->\n<clickhouse>\n    <users>\n",
    );
    if let Some(password) = admin_password {
        let _ = writeln!(
            x,
            "        <!-- The admin: runs ecg-migrate (DDL) and manages access. -->\n        \
             <default replace=\"replace\">\n            \
             <password_sha256_hex>{}</password_sha256_hex>\n            \
             <networks><ip>::/0</ip></networks>\n            \
             <profile>default</profile>\n            \
             <quota>default</quota>\n            \
             <access_management>1</access_management>\n            \
             <named_collection_control>1</named_collection_control>\n        \
             </default>",
            sha256_hex(password)
        );
    }
    for u in users {
        let user = &u.user;
        let _ = writeln!(x, "        <!-- {} -->", u.service.name());
        let _ = writeln!(x, "        <{user}>");
        let _ = writeln!(
            x,
            "            <password_sha256_hex>{}</password_sha256_hex>",
            sha256_hex(&u.password)
        );
        x.push_str("            <networks><ip>::/0</ip></networks>\n");
        x.push_str("            <profile>default</profile>\n");
        x.push_str("            <grants>\n");
        for (table, privileges) in u.service.grants() {
            let _ = writeln!(
                x,
                "                <query>{}</query>",
                xml_text(&format!("GRANT {privileges} ON {database}.{table}"))
            );
        }
        let _ = writeln!(x, "            </grants>\n        </{user}>");
    }
    x.push_str("    </users>\n</clickhouse>\n");
    Ok(x)
}

/// What `ecg-migrate services FILE.toml` reads: the database, the services'
/// logins and, optionally, the admin's password, each password in a file
/// of its own (as secrets are).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServicesFile {
    /// The database the services use.
    database: String,
    /// The password of `default`, the admin (compose); absent: `default`
    /// is left alone (the local stack).
    admin_password_file: Option<PathBuf>,
    /// One login per service.
    #[serde(default)]
    services: Vec<ServiceEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    service: Service,
    /// Default: [`Service::default_user`].
    user: Option<String>,
    /// Relative paths are relative to the TOML file's directory.
    password_file: PathBuf,
}

/// A services file read: the database, the logins, the admin's password.
#[derive(Debug)]
pub struct ServicesList {
    pub database: String,
    pub users: Vec<ServiceUser>,
    pub admin_password: Option<String>,
}

/// Reads a services file (`database = "ecg"`, optionally
/// `admin_password_file`, then `[[services]]` with `service`, optionally
/// `user`, and `password_file`) and the passwords it names.
pub fn read_services(path: &Path) -> Result<ServicesList, AccessError> {
    let text = std::fs::read_to_string(path).map_err(|source| AccessError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file: ServicesFile =
        Figment::from(Toml::string(&text))
            .extract()
            .map_err(|e| AccessError::File {
                path: path.to_path_buf(),
                source: Box::new(e),
            })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let admin_password = file
        .admin_password_file
        .map(|f| read_secret(base, &f))
        .transpose()?;
    let mut users = Vec::with_capacity(file.services.len());
    for entry in file.services {
        users.push(ServiceUser {
            service: entry.service,
            user: entry
                .user
                .unwrap_or_else(|| entry.service.default_user().to_string()),
            password: read_secret(base, &entry.password_file)?,
        });
    }
    Ok(ServicesList {
        database: file.database,
        users,
        admin_password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(service: Service) -> ServiceUser {
        ServiceUser {
            service,
            user: service.default_user().into(),
            password: format!("pw-{}", service.name()),
        }
    }

    #[test]
    fn each_service_gets_its_grants_and_only_a_password_hash() {
        let users: Vec<_> = Service::ALL.into_iter().map(user).collect();
        let xml = users_xml("ecg", &users, None).unwrap();
        assert!(
            xml.contains("<query>GRANT SELECT, INSERT ON ecg.ecgs</query>"),
            "{xml}"
        );
        assert!(
            xml.contains("<query>GRANT SELECT, INSERT, ALTER DELETE ON ecg.waiting_blocks</query>")
        );
        assert!(xml.contains("<query>GRANT SELECT ON ecg.*</query>"));
        for service in Service::ALL {
            assert!(xml.contains(&format!("<{}>", service.default_user())));
            assert!(!xml.contains(&format!(">pw-{}<", service.name())));
        }
        // sha256("pw-ingest")
        assert!(xml.contains(&sha256_hex("pw-ingest")));
        assert!(!xml.contains("<default"), "default is left alone");
        let debug = format!("{:?}", user(Service::Ingest));
        assert!(!debug.contains("pw-ingest"), "{debug}");
    }

    #[test]
    fn with_an_admin_password_default_is_replaced() {
        let xml = users_xml("ecg", &[user(Service::Ingest)], Some("admin pw")).unwrap();
        assert!(xml.contains("<default replace=\"replace\">"));
        assert!(xml.contains(&format!(
            "<password_sha256_hex>{}</password_sha256_hex>",
            sha256_hex("admin pw")
        )));
        assert!(!xml.contains("admin pw"));
        assert!(matches!(
            users_xml("ecg", &[], Some("")),
            Err(AccessError::EmptyPassword(u)) if u == "default"
        ));
    }

    #[test]
    fn bad_lists_are_refused() {
        let mut twice = user(Service::Processor);
        twice.user = "ingest".into();
        assert!(matches!(
            users_xml("ecg", &[user(Service::Ingest), twice], None),
            Err(AccessError::DuplicateUser(u)) if u == "ingest"
        ));
        let mut default = user(Service::Ingest);
        default.user = "default".into();
        assert!(users_xml("ecg", &[default], None).is_err());
        let mut empty = user(Service::Ingest);
        empty.password.clear();
        assert!(matches!(
            users_xml("ecg", &[empty], None),
            Err(AccessError::EmptyPassword(_))
        ));
        assert!(matches!(
            users_xml("ecg-prod", &[], None),
            Err(AccessError::Database(_))
        ));
    }

    #[test]
    fn services_file_reads_each_password_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        for (file, pw) in [
            ("clickhouse-admin", "adm\n"),
            ("clickhouse-ingest", "ing\n"),
            ("clickhouse-query-api", "qa"),
        ] {
            std::fs::write(dir.path().join(file), pw).unwrap();
        }
        let toml = dir.path().join("services.toml");
        std::fs::write(
            &toml,
            "database = \"ecg\"\nadmin_password_file = \"clickhouse-admin\"\n\
             [[services]]\nservice = \"ingest\"\npassword_file = \"clickhouse-ingest\"\n\
             [[services]]\nservice = \"query-api\"\nuser = \"reader\"\npassword_file = \"clickhouse-query-api\"\n",
        )
        .unwrap();
        let list = read_services(&toml).unwrap();
        assert_eq!(list.database, "ecg");
        assert_eq!(list.admin_password.as_deref(), Some("adm"));
        assert_eq!(
            list.users,
            [
                ServiceUser {
                    service: Service::Ingest,
                    user: "ingest".into(),
                    password: "ing".into()
                },
                ServiceUser {
                    service: Service::QueryApi,
                    user: "reader".into(),
                    password: "qa".into()
                }
            ]
        );
        std::fs::write(
            &toml,
            "database = \"ecg\"\n[[services]]\nservice = \"gateway\"\npassword_file = \"x\"\n",
        )
        .unwrap();
        let err = read_services(&toml).unwrap_err().to_string();
        assert!(err.contains("gateway"), "{err}");
    }

    /// Every table a grant names exists in a freshly migrated database.
    /// Needs the ClickHouse of `make test`.
    #[tokio::test]
    async fn every_granted_table_exists() {
        let config = crate::migrate::test_database("service_grants").await;
        let tables: Vec<String> = config
            .client()
            .query("SELECT name FROM system.tables WHERE database = currentDatabase()")
            .fetch_all()
            .await
            .unwrap();
        for (service, grants) in GRANTS {
            for (table, _) in *grants {
                assert!(
                    *table == "*" || tables.iter().any(|t| t == table),
                    "{service:?}: no table {table}"
                );
            }
        }
        config
            .server_client()
            .query("DROP DATABASE ?")
            .bind(clickhouse::sql::Identifier(&config.database))
            .execute()
            .await
            .unwrap();
    }
}
