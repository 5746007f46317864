//! Reads a client secret on stdin (one line) and prints its argon2id PHC
//! hash, the form `auth.clients[].secret_hash` takes: operators configure
//! clients without the secret itself ever reaching a config file.
//!
//! ```sh
//! head -c 32 /dev/urandom | base64 | tee client.secret | ecg-hash-secret
//! ```

use std::io::BufRead as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        eprintln!("ecg-hash-secret: cannot read the secret from stdin: {e}");
        return ExitCode::FAILURE;
    }
    // A trailing newline from `echo` or a file is not part of the secret.
    let secret = line.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        eprintln!("ecg-hash-secret: the secret on stdin is empty");
        return ExitCode::FAILURE;
    }
    println!("{}", ecg_auth::hash_secret(secret));
    ExitCode::SUCCESS
}
