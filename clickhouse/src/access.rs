//! Read-only ClickHouse logins for analysts, one tenant each. [`users_xml`]
//! writes them as a users.d document (ClickHouse's `users.xml` format): a
//! read-only settings profile, and per analyst a user with a SHA-256
//! password hash, `GRANT SELECT ON {database}.*` and a row filter
//! `tenant = '<tenant>'` on every table and view of [`TENANT_TABLES`] and
//! [`TENANT_VIEWS`].
//!
//! Guarantee: over SQL (HTTP or native), such a user reads only its tenant's
//! rows of ecg-stream's database and changes nothing. The filters that do
//! the work are those on the tables: ClickHouse ignores a row filter on a
//! view (measured on 26.9), but a view runs its query as the user who reads
//! it (SQL SECURITY INVOKER, the default for plain views), so it reads the
//! filtered tables; the views' own filters are written anyway and cost
//! nothing. The parameterised view `samples_window` reads `blocks` the same
//! way. A view declared `SQL SECURITY DEFINER` would bypass the tables'
//! filters: the test below refuses one.
//!
//! Limits: names go into XML element names, so a user name is letters,
//! digits, `_` and `-` (see [`AccessError::User`]); other users of the
//! server (`default`, the services' users of [`crate::service_users`])
//! keep reading every row they are granted, which needs
//! ClickHouse's `users_without_row_policies_can_read_rows` (the default);
//! `system` tables stay closed only where the server requires grants for
//! them (`select_from_system_db_requires_grant`, set for compose in
//! `deploy/clickhouse/access.xml`, the default of chdb 26.9).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The tables of ecg-stream's database with a `tenant` column: each row
/// belongs to that tenant. Adding a table with a `tenant` column to a
/// migration without listing it here fails `every_tenant_table_is_filtered`.
pub const TENANT_TABLES: &[&str] = &[
    "blocks",
    "ecg_progress",
    "ecgs",
    "failed_chunks",
    "idempotency_keys",
    "waiting_blocks",
];

/// The views with a `tenant` column. They read the tables above as the
/// querying user, so the tables' filters apply to them.
pub const TENANT_VIEWS: &[&str] = &[
    "beats",
    "block_values",
    "lead_chunks",
    "lead_insights",
    "samples",
];

/// The tables and views without a `tenant` column, and why no tenant's data
/// is in them. Analysts can read them.
pub const UNTENANTED: &[(&str, &str)] = &[
    (
        "schema_migrations",
        "the migrations applied: version, name, checksum, time",
    ),
    (
        "samples_window",
        "a parameterised view over `blocks` (its tenant is a parameter, its reads are `blocks`' and filtered as such)",
    ),
];

/// The settings profile of every analyst user.
pub const PROFILE: &str = "ecg_analyst";

/// The caps of [`PROFILE`], for ad-hoc queries: the longest example query of
/// clickhouse/README.md takes well under a second, so these only stop a
/// runaway query (a join without a key, a `SELECT *` of all samples) before
/// it hurts the services that share the server. `readonly = 1` also keeps a
/// query from lifting them with `SET` or `SETTINGS`.
const PROFILE_SETTINGS: &[(&str, &str, &str)] = &[
    (
        "readonly",
        "1",
        "SELECT only: no INSERT, ALTER, CREATE, DROP, and no SET, so the caps below hold",
    ),
    ("max_execution_time", "300", "seconds per query"),
    ("max_memory_usage", "4000000000", "bytes per query (4 GB)"),
    (
        "max_result_rows",
        "10000000",
        "rows a query may return; aggregate in SQL, or read long ECGs through samples_window",
    ),
];

/// One analyst login: `user` reads only `tenant`'s rows.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analyst {
    /// The tenant whose rows the user sees.
    pub tenant: String,
    /// The ClickHouse user name.
    pub user: String,
    /// The password (only its SHA-256 goes into the document; never logged).
    pub password: String,
}

impl std::fmt::Debug for Analyst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyst")
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "ClickHouse user name {user:?} {reason}: a user name is letters, digits, '_' and '-', starting with a letter or '_' (it becomes an XML element name; with '.' ClickHouse 26.9 drops the user's row filters, '@' is not valid XML)"
    )]
    User { user: String, reason: String },
    #[error("ClickHouse user {0:?} is listed twice")]
    DuplicateUser(String),
    #[error("analyst user {0:?} has an empty tenant")]
    EmptyTenant(String),
    #[error("ClickHouse user {0:?} has an empty password")]
    EmptyPassword(String),
    #[error("database name {0:?}: expected letters, digits and '_', starting with a letter or '_'")]
    Database(String),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: Box<figment::Error>,
    },
}

/// The users.d document of `analysts`' logins to `database`. Every value is
/// escaped for XML, the tenants also as SQL string literals.
pub fn users_xml(database: &str, analysts: &[Analyst]) -> Result<String, AccessError> {
    if !is_identifier(database) {
        return Err(AccessError::Database(database.to_string()));
    }
    let mut seen = std::collections::HashSet::new();
    for a in analysts {
        check_user(&a.user)?;
        if !seen.insert(a.user.as_str()) {
            return Err(AccessError::DuplicateUser(a.user.clone()));
        }
        if a.tenant.is_empty() {
            return Err(AccessError::EmptyTenant(a.user.clone()));
        }
        if a.password.is_empty() {
            return Err(AccessError::EmptyPassword(a.user.clone()));
        }
    }
    // `write!` into a String cannot fail: the results are ignored.
    let mut x = String::new();
    x.push_str(
        "<!-- Written by `ecg-migrate analysts`: read-only ClickHouse logins for analysts,\n     \
         one tenant each (clickhouse/README.md, \"Analyst logins\"). Regenerate, do not edit. -->\n\
         <clickhouse>\n    <profiles>\n",
    );
    let _ = writeln!(x, "        <{PROFILE}>");
    for (name, value, why) in PROFILE_SETTINGS {
        let _ = writeln!(
            x,
            "            <!-- {why} -->\n            <{name}>{value}</{name}>"
        );
    }
    let _ = writeln!(x, "        </{PROFILE}>\n    </profiles>\n    <users>");
    for a in analysts {
        let user = &a.user;
        let filter = xml_text(&format!("tenant = {}", sql_string(&a.tenant)));
        let _ = writeln!(x, "        <{user}>");
        let _ = writeln!(
            x,
            "            <password_sha256_hex>{}</password_sha256_hex>",
            sha256_hex(&a.password)
        );
        // Open to every address: who may reach the server at all is the
        // operator's network's business (compose: no published port).
        x.push_str("            <networks><ip>::/0</ip></networks>\n");
        let _ = writeln!(x, "            <profile>{PROFILE}</profile>");
        let _ = writeln!(
            x,
            "            <grants><query>GRANT SELECT ON {database}.*</query></grants>"
        );
        let _ = writeln!(x, "            <databases>\n                <{database}>");
        for table in TENANT_TABLES.iter().chain(TENANT_VIEWS) {
            let _ = writeln!(
                x,
                "                    <{table}><filter>{filter}</filter></{table}>"
            );
        }
        let _ = writeln!(
            x,
            "                </{database}>\n            </databases>\n        </{user}>"
        );
    }
    x.push_str("    </users>\n</clickhouse>\n");
    Ok(x)
}

/// What `ecg-migrate analysts FILE.toml` reads: the database and the
/// analysts, each password in a file of its own (as secrets are).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalystsFile {
    /// The database the analysts read.
    database: String,
    /// One login each.
    #[serde(default)]
    analysts: Vec<AnalystEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalystEntry {
    tenant: String,
    user: String,
    /// Relative paths are relative to the TOML file's directory.
    password_file: PathBuf,
}

/// Reads an analysts file (`database = "ecg"`, then `[[analysts]]` with
/// `tenant`, `user` and `password_file`) and the passwords it names: the
/// password is a file's content without its final line break.
pub fn read_analysts(path: &Path) -> Result<(String, Vec<Analyst>), AccessError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| AccessError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let file: AnalystsFile = Figment::from(Toml::string(&read(path)?))
        .extract()
        .map_err(|e| AccessError::File {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut analysts = Vec::with_capacity(file.analysts.len());
    for entry in file.analysts {
        analysts.push(Analyst {
            tenant: entry.tenant,
            user: entry.user,
            password: read_secret(base, &entry.password_file)?,
        });
    }
    Ok((file.database, analysts))
}

/// The password in `file` (relative to `base`, a list's directory),
/// without its final line break.
pub(crate) fn read_secret(base: &Path, file: &Path) -> Result<String, AccessError> {
    let path = base.join(file);
    crate::config::read_password(&path).map_err(|source| AccessError::Read { path, source })
}

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn check_user(user: &str) -> Result<(), AccessError> {
    let bad = |reason: String| AccessError::User {
        user: user.to_string(),
        reason,
    };
    let Some(first) = user.chars().next() else {
        return Err(bad("is empty".into()));
    };
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(bad(format!("starts with {first:?}")));
    }
    if let Some(c) = user
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(bad(format!("contains {c:?}")));
    }
    if user == "default" {
        return Err(bad("is ClickHouse's admin (ecg-migrate's user)".into()));
    }
    Ok(())
}

/// `value` as a ClickHouse string literal: quote and backslash escaped, and
/// every character XML cannot carry as is (controls, which XML parsers also
/// normalise, such as CR) written as `\xHH` bytes, so the literal survives
/// the trip through XML byte for byte.
fn sql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                let mut bytes = [0; 4];
                for b in c.encode_utf8(&mut bytes).bytes() {
                    let _ = write!(out, "\\x{b:02X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `value` as XML character data (element content or attribute value).
/// A password as ClickHouse's `password_sha256_hex` takes it.
pub(crate) fn sha256_hex(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

pub(crate) fn xml_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyst(tenant: &str, user: &str) -> Analyst {
        Analyst {
            tenant: tenant.into(),
            user: user.into(),
            password: "secret".into(),
        }
    }

    /// The XML character data of `xml` decoded (the five entities we write).
    fn xml_decode(xml: &str) -> String {
        xml.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    }

    #[test]
    fn every_tenant_table_gets_the_escaped_tenant_filter() {
        let tenant = "o'brien\\ & <co>\"\r\n";
        let xml = users_xml("ecg", &[analyst(tenant, "analyst-ob_1")]).unwrap();
        let filter = "tenant = 'o\\'brien\\\\ & <co>\"\\x0D\\x0A'";
        for table in TENANT_TABLES.iter().chain(TENANT_VIEWS) {
            let element = format!("<{table}><filter>");
            let start = xml
                .find(&element)
                .unwrap_or_else(|| panic!("{table}:\n{xml}"));
            let rest = &xml[start + element.len()..];
            let text = &rest[..rest.find("</filter>").unwrap()];
            assert!(!text.contains(['<', '\'', '"', '\r', '\n']), "{text}");
            assert_eq!(xml_decode(text), filter, "{table}");
        }
        assert!(xml.contains("<grants><query>GRANT SELECT ON ecg.*</query></grants>"));
        assert!(xml.contains("<networks><ip>::/0</ip></networks>"));
        assert!(xml.contains("<profile>ecg_analyst</profile>"));
        assert!(xml.contains("<readonly>1</readonly>"));
    }

    #[test]
    fn only_the_password_hash_is_written() {
        let xml = users_xml("ecg", &[analyst("acme", "analyst_acme")]).unwrap();
        // sha256("secret")
        assert!(xml.contains(
            "<password_sha256_hex>2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b</password_sha256_hex>"
        ));
        assert!(!xml.contains(">secret<"));
        let debug = format!("{:?}", analyst("acme", "analyst_acme"));
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn user_names_are_checked_precisely() {
        let err = |user: &str| {
            users_xml("ecg", &[analyst("acme", user)])
                .unwrap_err()
                .to_string()
        };
        assert!(err("ana.lyst").contains("\"ana.lyst\" contains '.'"));
        assert!(err("ana@acme").contains("contains '@'"));
        assert!(err("ana lyst").contains("contains ' '"));
        assert!(err("-analyst").contains("starts with '-'"));
        assert!(err("1analyst").contains("starts with '1'"));
        assert!(err("").contains("is empty"));
        assert!(err("default").contains("ClickHouse's admin"));
        assert!(err("ana<x>").contains("contains '<'"));
        assert!(users_xml("ecg", &[analyst("acme", "_Analyst-acme_2")]).is_ok());
    }

    #[test]
    fn bad_lists_are_refused() {
        let two = [analyst("a", "x"), analyst("b", "x")];
        assert!(matches!(users_xml("ecg", &two), Err(AccessError::DuplicateUser(u)) if u == "x"));
        assert!(matches!(
            users_xml("ecg", &[analyst("", "x")]),
            Err(AccessError::EmptyTenant(_))
        ));
        let mut no_password = analyst("a", "x");
        no_password.password.clear();
        assert!(matches!(
            users_xml("ecg", &[no_password]),
            Err(AccessError::EmptyPassword(_))
        ));
        for db in ["", "ecg-prod", "1ecg", "ecg.x", "e<g"] {
            assert!(
                matches!(users_xml(db, &[]), Err(AccessError::Database(_))),
                "{db}"
            );
        }
    }

    #[test]
    fn analysts_file_reads_each_password_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/acme"), "pass word\n").unwrap();
        std::fs::write(dir.path().join("beta"), "s3cr3t\r\n").unwrap();
        let toml = dir.path().join("analysts.toml");
        std::fs::write(
            &toml,
            format!(
                "database = \"ecg\"\n\
                 [[analysts]]\ntenant = \"acme\"\nuser = \"analyst_acme\"\npassword_file = \"secrets/acme\"\n\
                 [[analysts]]\ntenant = \"beta\"\nuser = \"analyst_beta\"\npassword_file = \"{}\"\n",
                dir.path().join("beta").display()
            ),
        )
        .unwrap();
        let (database, analysts) = read_analysts(&toml).unwrap();
        assert_eq!(database, "ecg");
        assert_eq!(
            analysts,
            [
                Analyst {
                    tenant: "acme".into(),
                    user: "analyst_acme".into(),
                    password: "pass word".into()
                },
                Analyst {
                    tenant: "beta".into(),
                    user: "analyst_beta".into(),
                    password: "s3cr3t".into()
                }
            ]
        );
        std::fs::write(&toml, "database = \"ecg\"\npasword = 1\n").unwrap();
        let err = read_analysts(&toml).unwrap_err().to_string();
        assert!(err.contains("pasword"), "{err}");
        std::fs::write(
            &toml,
            "database = \"ecg\"\n[[analysts]]\ntenant = \"a\"\nuser = \"b\"\npassword_file = \"missing\"\n",
        )
        .unwrap();
        let err = read_analysts(&toml).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }

    /// What a freshly migrated database disagrees with the lists on: tables
    /// or views with a `tenant` column that are not listed (or listed as the
    /// wrong kind), listed ones that are gone, tables without `tenant` that
    /// are not in [`UNTENANTED`], and views that run as their definer.
    async fn unlisted(client: &clickhouse::Client) -> Vec<String> {
        let tables: Vec<(String, String, String, u64)> = client
            .query(
                "SELECT t.name, t.engine, t.create_table_query,
                        countIf(c.name = 'tenant') AS tenant_columns
                 FROM system.tables AS t
                 LEFT JOIN (SELECT table, name FROM system.columns WHERE database = currentDatabase()) AS c
                     ON c.table = t.name
                 WHERE t.database = currentDatabase()
                 GROUP BY t.name, t.engine, t.create_table_query
                 ORDER BY t.name",
            )
            .fetch_all()
            .await
            .unwrap();
        let mut problems = Vec::new();
        for (name, engine, create, tenant_columns) in &tables {
            let view = engine == "View";
            let listed = if view { TENANT_VIEWS } else { TENANT_TABLES };
            let untenanted = UNTENANTED.iter().any(|(n, _)| n == name);
            match (
                *tenant_columns > 0,
                listed.contains(&name.as_str()),
                untenanted,
            ) {
                (true, true, false) | (false, false, true) => {}
                (true, ..) => problems.push(format!(
                    "{engine} {name} has a tenant column but no filter in the list"
                )),
                (false, ..) => problems.push(format!(
                    "{engine} {name} has no tenant column and is not in UNTENANTED"
                )),
            }
            if view && create.contains("DEFINER") {
                problems.push(format!(
                    "view {name} runs as its definer: the tables' filters do not apply"
                ));
            }
        }
        for name in TENANT_TABLES.iter().chain(TENANT_VIEWS) {
            if !tables.iter().any(|t| t.0 == *name) {
                problems.push(format!("{name} is listed but not in the database"));
            }
        }
        problems
    }

    /// Every table and view of a freshly migrated database with a `tenant`
    /// column has its filter, every other one is declared tenant-free, and a
    /// new tenant table (as a new migration would add) is noticed. Needs the
    /// ClickHouse of `make test`.
    #[tokio::test]
    async fn every_tenant_table_is_filtered() {
        let config = crate::migrate::test_database("access").await;
        let client = config.client();
        assert_eq!(unlisted(&client).await, Vec::<String>::new());
        client
            .query("CREATE TABLE notes (tenant String, note String) ENGINE = MergeTree ORDER BY tenant")
            .execute()
            .await
            .unwrap();
        client
            .query("CREATE VIEW notes_view SQL SECURITY DEFINER AS SELECT note FROM notes")
            .execute()
            .await
            .unwrap();
        assert_eq!(
            unlisted(&client).await,
            [
                "MergeTree notes has a tenant column but no filter in the list",
                "View notes_view has no tenant column and is not in UNTENANTED",
                "view notes_view runs as its definer: the tables' filters do not apply",
            ]
        );
        config
            .server_client()
            .query("DROP DATABASE ?")
            .bind(clickhouse::sql::Identifier(&config.database))
            .execute()
            .await
            .unwrap();
    }
}
