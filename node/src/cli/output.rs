//! How the command speaks: human lines or JSON lines on stdout, errors that say what to do,
//! and exit codes that mean one thing each.

use std::fmt::Display;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Exit codes: one meaning each, documented in the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Something unexpected; a bug or an I/O failure.
    Internal = 1,
    /// Bad arguments (clap also exits 2).
    Usage = 2,
    /// The key has no value in the ring.
    NotFound = 3,
    /// A peer did not answer (bootstrap or `--via` unreachable, a timeout).
    Unreachable = 4,
    /// The address could not be bound (in use, not local, no permission).
    Bind = 5,
    /// The ring refused the request (store full, value too large).
    Refused = 6,
}

/// An error for the user: what went wrong, and what to do about it.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong.
    pub what: String,
    /// What to do.
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(exit: Exit, what: impl Display) -> Self {
        CliError {
            exit,
            what: what.to_string(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Display) -> Self {
        self.hint = Some(hint.to_string());
        self
    }

    /// Reports the error on stderr and gives the process's exit code.
    pub fn report(&self, json: bool) -> ExitCode {
        if json {
            let v = serde_json::json!({
                "error": self.what,
                "hint": self.hint,
                "exit": self.exit as u8,
            });
            eprintln!("{v}");
        } else {
            eprintln!("error: {}", self.what);
            if let Some(h) = &self.hint {
                eprintln!("  hint: {h}");
            }
        }
        ExitCode::from(self.exit as u8)
    }
}

/// An I/O error while binding `addr`, explained.
pub fn bind_error(addr: impl Display, e: std::io::Error) -> CliError {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another process uses this port: pick another with --bind, or find it with `ss -ulpn`"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "this address is not on any local interface: use one of this machine's addresses"
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges: use a higher port"
        }
        _ => "check the address and port",
    };
    CliError::new(Exit::Bind, format!("cannot bind {addr}: {e}")).hint(hint)
}

/// Prints results: one human line, or one JSON object per line with `--json`.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    pub json: bool,
}

impl Printer {
    /// Prints `human`, or `json` (an object whose `"event"` names it) with `--json`.
    pub fn emit(&self, human: impl Display, json: Value) {
        if self.json {
            println!("{json}");
        } else {
            println!("{human}");
        }
    }

    /// A spinner for work of unknown length, on stderr; hidden with `--json` (and by
    /// indicatif when stderr is not a terminal).
    pub fn spinner(&self, message: String) -> ProgressBar {
        let bar = self.bar(ProgressBar::new_spinner(), "{spinner} {msg} [{elapsed}]");
        bar.set_message(message);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }

    /// A progress bar of `len` steps, shown like the spinner.
    pub fn progress(&self, len: u64, message: &str) -> ProgressBar {
        let bar = self.bar(ProgressBar::new(len), "  {msg:<10} [{bar:30}] {pos}/{len}");
        bar.set_message(message.to_string());
        bar
    }

    /// A download's bar over `total` bytes: rate and ETA, and a message (peers).
    pub fn bytes_progress(&self, total: u64) -> ProgressBar {
        let template = "  [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}";
        self.bar(ProgressBar::new(total), template)
    }

    fn bar(&self, bar: ProgressBar, template: &str) -> ProgressBar {
        if self.json {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template(template).expect("a valid template");
        bar.with_style(style.progress_chars("=> "))
    }
}
