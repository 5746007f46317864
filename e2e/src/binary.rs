//! The workspace's own binaries, run as operating-system processes by the
//! tests (the processor, `ecg-hash-secret`).

use std::path::PathBuf;
use std::process::Command;

/// Where `cargo` puts binary `bin` of workspace package `package`, next to
/// the running test's own binary; built there first if it is missing
/// (`cargo test` builds only the binaries of the package under test).
pub fn built_binary(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> (or examples/<example>) -> target/<profile>/<bin>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| anyhow::anyhow!("test binary outside a cargo target dir"))?;
    let path = profile_dir.join(bin);
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", package, "--bin", bin]);
        // A release-built example (the pipeline benchmark) runs release services.
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status()?;
        anyhow::ensure!(
            status.success() && path.is_file(),
            "building {bin} failed; expected {}",
            path.display()
        );
    }
    Ok(path)
}
