//! One line of text per event, written to whatever console the board registered (a UART):
//! the test harness and a person at a serial terminal read the same lines.

use core::cell::Cell;
use core::fmt;
use critical_section::Mutex;

/// Writes bytes to the console.
type Sink = fn(&[u8]);

static SINK: Mutex<Cell<Option<Sink>>> = Mutex::new(Cell::new(None));

/// Sends every log line to `sink` from now on.
pub fn set_sink(sink: Sink) {
    critical_section::with(|cs| SINK.borrow(cs).set(Some(sink)));
}

/// The console as a [`fmt::Write`]; [`log!`](crate::log!) writes whole lines through it.
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(sink) = critical_section::with(|cs| SINK.borrow(cs).get()) {
            sink(s.as_bytes());
        }
        Ok(())
    }
}

/// Writes one line to the console, formatted like `println!`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::log::Console, $($arg)*);
    }};
}
