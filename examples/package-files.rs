//! Writes the man pages and shell completions the Debian package installs, generated from the
//! command line's definitions: `cargo run --example package-files -- DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: package-files DIR");
        return ExitCode::from(2);
    };
    match sysmon::docs::write_all(&dir) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("package-files: cannot write under {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
