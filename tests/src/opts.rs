//! The experiment binaries' options: `--name value` and `--flag`, read by name with a
//! default (no parser dependency for a handful of numbers).

use std::collections::HashMap;

/// Parsed options.
pub struct Opts(HashMap<String, String>);

impl Opts {
    /// Reads `--name value` pairs and bare `--flag`s; anything else is ignored.
    pub fn parse(args: &[String]) -> Opts {
        let mut m = HashMap::new();
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                let value = match it.peek() {
                    Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                    _ => "true".to_string(),
                };
                m.insert(name.to_string(), value);
            }
        }
        Opts(m)
    }

    /// The option's value parsed as `T`, or `default`.
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.0
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// The option's text, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Whether the option was given.
    pub fn flag(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A comma-separated list, or `default` (written the same way); items that do not parse
    /// are skipped.
    pub fn list<T: std::str::FromStr>(&self, name: &str, default: &str) -> Vec<T> {
        self.text(name)
            .unwrap_or(default)
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }

    /// A power of two's exponent, written `k` or `2^k`.
    pub fn exponent(&self, name: &str, default: u32) -> u32 {
        self.0
            .get(name)
            .and_then(|v| v.strip_prefix("2^").unwrap_or(v).parse().ok())
            .unwrap_or(default)
    }
}

/// The process's peak resident memory (Linux `VmHWM`), for the binaries' closing line.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
