//! `ecgctl export`: an ECG in a hospital's format, streamed to disk.
//!
//! - `--format fhir`: `GET /v1/ecgs/{id}/fhir`, every page. One page is
//!   written as the FHIR `Observation` it is; several (a long recording)
//!   as one FHIR `Bundle` of type `collection` whose entries are the pages'
//!   Observations in order. The pages' bytes are copied as they arrive,
//!   never parsed or held whole.
//! - `--format wfdb`: `GET /v1/ecgs/{id}/wfdb`, a tar of the record
//!   (`.hea`, `.dat`, one `.qrs<k>` of beats per lead that has any),
//!   downloaded beside the output directory and unpacked into it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ecg_client::{Api, next_link};
use time::format_description::well_known::Rfc3339;

use crate::cli::{Export, ExportFormat};

pub async fn export(api: &Api, args: &Export) -> anyhow::Result<()> {
    let mut query = Vec::new();
    for (name, t) in [("from", args.from), ("to", args.to)] {
        if let Some(t) = t {
            query.push(format!("{name}={}", t.format(&Rfc3339)?));
        }
    }
    match args.format {
        ExportFormat::Fhir => {
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.fhir.json", args.id)));
            let path = with_query(&format!("/v1/ecgs/{}/fhir", args.id), &query);
            let partial = partial_path(&out);
            let pages = match fhir(api, &path, &partial).await {
                Ok(pages) => pages,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
            };
            std::fs::rename(&partial, &out)
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "wrote ECG {} to {} ({})",
                args.id,
                out.display(),
                if pages == 1 {
                    "a FHIR Observation".to_owned()
                } else {
                    format!("a FHIR Bundle of {pages} Observations")
                }
            );
        }
        ExportFormat::Wfdb => {
            if let Some(record) = &args.record {
                query.push(format!("record={record}"));
            }
            let dir = args.out.clone().unwrap_or_else(|| PathBuf::from("."));
            let path = with_query(&format!("/v1/ecgs/{}/wfdb", args.id), &query);
            let files = wfdb(api, &path, &dir).await?;
            eprintln!(
                "wrote ECG {} as a WFDB record to {}: {}",
                args.id,
                dir.display(),
                files.join(", ")
            );
        }
    }
    Ok(())
}

fn with_query(path: &str, query: &[String]) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Writes every page from `path` on to `out`; the number of pages.
async fn fhir(api: &Api, path: &str, out: &Path) -> anyhow::Result<usize> {
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    let mut next = Some(path.to_owned());
    let mut pages = 0usize;
    while let Some(url) = next.take() {
        let mut r = api.export(&url).await?;
        next = next_link(&r);
        pages += 1;
        if pages == 1 && next.is_none() {
            // The only page: the Observation itself.
            while let Some(bytes) = r.chunk().await? {
                file.write_all(&bytes)?;
            }
            break;
        }
        if pages == 1 {
            file.write_all(br#"{"resourceType":"Bundle","type":"collection","entry":["#)?;
        } else {
            file.write_all(b",")?;
        }
        file.write_all(br#"{"resource":"#)?;
        while let Some(bytes) = r.chunk().await? {
            file.write_all(&bytes)?;
        }
        file.write_all(b"}")?;
        if next.is_none() {
            file.write_all(b"]}")?;
        }
    }
    file.flush()?;
    Ok(pages)
}

/// Downloads the record's tar beside `dir` and unpacks it there; the names
/// of the files written.
async fn wfdb(api: &Api, path: &str, dir: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tar_path = partial_path(&dir.join("record.tar"));
    let mut r = api.export(path).await?;
    {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&tar_path)
                .with_context(|| format!("creating {}", tar_path.display()))?,
        );
        while let Some(bytes) = r.chunk().await? {
            file.write_all(&bytes)?;
        }
        file.flush()?;
    }
    let unpacked = unpack(&tar_path, dir);
    let _ = std::fs::remove_file(&tar_path);
    unpacked
}

/// Unpacks the plain files of the archive at `tar_path` into `dir`.
fn unpack(tar_path: &Path, dir: &Path) -> anyhow::Result<Vec<String>> {
    let file = std::fs::File::open(tar_path)?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut names = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        // The server names files `<record>.<ext>`: nothing else is taken.
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            bail!("the archive holds an unexpected path {name:?}");
        }
        entry
            .unpack(dir.join(&name))
            .with_context(|| format!("writing {}", dir.join(&name).display()))?;
        names.push(name);
    }
    if names.is_empty() {
        bail!("the archive is empty");
    }
    Ok(names)
}

/// Where `path` is written before it is complete.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}
