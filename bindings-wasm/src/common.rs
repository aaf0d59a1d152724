//! What every class shares: time and address arguments, the one error type, node records,
//! and the `Driver` that owns a machine and pumps it (inputs in, outputs out), written once.

use overlay_bindings::{Pump, Refusal, Step};
use overlay_core::{ConnId, Id, Input, Instant, Machine, PeerAddr};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tsify::{Ts, Tsify};
use wasm_bindgen::JsValue;

/// Why a call was refused (`overlay_bindings::Refusal`, shared with the mobile bindings):
/// thrown as a JS `Error` whose `code` is the refusal's name (`err.code === "Busy"`). A
/// refused command starts nothing.
#[derive(Debug)]
pub struct OverlayError(pub Refusal);

/// Every protocol's command errors, through the shared mapping (`?` in the classes).
impl<E: Into<Refusal>> From<E> for OverlayError {
    fn from(e: E) -> Self {
        OverlayError(e.into())
    }
}

impl From<OverlayError> for JsValue {
    fn from(OverlayError(refusal): OverlayError) -> JsValue {
        let error = js_sys::Error::new(&refusal.to_string());
        error.set_name("OverlayError");
        // Setting a property on a fresh Error object cannot fail.
        let _ = js_sys::Reflect::set(&error, &"code".into(), &refusal.code().into());
        error.into()
    }
}

/// Shorthand for an `Internal` refusal (a bug).
pub(crate) fn internal(why: impl Into<String>) -> OverlayError {
    OverlayError(Refusal::Internal(why.into()))
}

/// A Rust value as the JS object its TypeScript type declares.
pub(crate) fn js<T: Tsify + Serialize>(value: &T) -> Result<Ts<T>, OverlayError> {
    value.into_ts().map_err(|e| internal(e.to_string()))
}

/// A JS object argument (a config) as its Rust value; a field of the wrong type or a field
/// the type does not have (a typo) is an `InvalidArgument` that names it. The object goes
/// through a JSON value because serde-wasm-bindgen reads only the fields a struct declares,
/// so it could not see a misspelt one.
pub(crate) fn rust<T: Tsify + DeserializeOwned>(value: Ts<T>) -> Result<T, OverlayError> {
    let json: serde_json::Value = serde_wasm_bindgen::from_value(value.js_value())
        .map_err(|e| invalid(format!("not a plain object: {e}")))?;
    serde_path_to_error::deserialize(json).map_err(|e| {
        let field = e.path().to_string();
        invalid(format!("{field}: {}", e.into_inner()))
    })
}

/// Shorthand for an `InvalidArgument`.
pub(crate) fn invalid(why: impl Into<String>) -> OverlayError {
    OverlayError(Refusal::InvalidArgument(why.into()))
}

/// The largest integer a JS number holds exactly: 2^53. Times (285 years of microseconds),
/// seeds and ids cross as numbers up to it.
const MAX_SAFE: f64 = 9_007_199_254_740_992.0;

/// Parses a whole-number argument in `0..=max` (`what` names it). wasm-bindgen would wrap
/// an integer parameter silently (70000 as a `u16` port is 4464, `NaN` is 0), so numbers
/// arrive as `f64` and are checked here.
pub(crate) fn whole(value: f64, max: f64, what: &str) -> Result<u64, OverlayError> {
    if !(0.0..=max).contains(&value) || value.fract() != 0.0 {
        return Err(invalid(format!(
            "{what} must be a whole number in 0..={max}, not {value}"
        )));
    }
    Ok(value as u64)
}

/// Parses a `nowUs` argument: a whole, non-negative number of microseconds up to 2^53.
pub(crate) fn micros(now_us: f64) -> Result<u64, OverlayError> {
    whole(now_us, MAX_SAFE, "nowUs")
}

/// Parses a `seed` argument (a whole number up to 2^53: distinct seeds stay distinct).
pub(crate) fn rng_seed(seed: f64) -> Result<u64, OverlayError> {
    whole(seed, MAX_SAFE, "seed")
}

/// Parses a 32-bit argument (a piece index).
pub(crate) fn whole_u32(value: f64, what: &str) -> Result<u32, OverlayError> {
    whole(value, f64::from(u32::MAX), what).map(|v| v as u32)
}

/// Parses a boolean argument strictly (wasm-bindgen takes any truthy value as `true`).
pub(crate) fn boolean(value: &JsValue, what: &str) -> Result<bool, OverlayError> {
    value
        .as_bool()
        .ok_or_else(|| invalid(format!("{what} must be true or false")))
}

/// Parses a list of strings (an array whose every item is a string); wasm-bindgen's own
/// `Vec<String>` conversion throws past the binding on a non-string, leaving the object
/// borrowed for good.
pub(crate) fn strings(values: Vec<JsValue>, what: &str) -> Result<Vec<String>, OverlayError> {
    values
        .into_iter()
        .map(|v| {
            v.as_string()
                .ok_or_else(|| invalid(format!("{what} must be strings")))
        })
        .collect()
}

/// A duration setting in milliseconds: at least 1 (a zero interval would make a timer due
/// at every poll) and at most 2^32 (49 days).
pub(crate) fn interval(ms: u64, what: &str) -> Result<overlay_core::Duration, OverlayError> {
    if !(1..=1 << 32).contains(&ms) {
        return Err(invalid(format!(
            "{what} must be in 1..=2^32 milliseconds, not {ms}"
        )));
    }
    Ok(overlay_core::Duration::from_millis(ms))
}

/// Parses an address argument: `"127.0.0.1:7000"`, `"[::1]:7000"`.
pub(crate) fn peer(addr: &str) -> Result<PeerAddr, OverlayError> {
    addr.parse::<std::net::SocketAddr>()
        .map(Into::into)
        .map_err(|_| invalid(format!("{addr:?} is not an address like 127.0.0.1:7000")))
}

/// An id as JS sees it: 40 lowercase hex digits.
pub(crate) fn hex(id: Id) -> String {
    format!("{id:x}")
}

/// Bytes as lowercase hex (a servent id, a SHA-1).
pub(crate) fn hex_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses an id argument (a node id, a target, an info hash) written as 40 hex digits, with
/// core's parser; `what` names the argument.
pub(crate) fn hex_id(text: &str, what: &str) -> Result<Id, OverlayError> {
    text.parse()
        .map_err(|_| invalid(format!("{what} is 40 hex digits, not {text:?}")))
}

/// Parses 20 bytes written as 40 hex digits (a peer id, a SHA-1).
pub(crate) fn hex20(text: &str, what: &str) -> Result<[u8; 20], OverlayError> {
    hex_id(text, what).map(|id| id.0)
}

/// A connection id as JS sees it. Core marks the connections the driver accepted with the
/// top bit, which a JS number cannot hold exactly: they are negative here (`-1 - n` for
/// the n-th accepted), the machine's own dials are `0, 1, 2, ...`.
pub(crate) fn conn_js(conn: ConnId) -> f64 {
    let raw = conn.raw();
    if raw >> 63 == 1 {
        -1.0 - (raw & !(1 << 63)) as f64
    } else {
        raw as f64
    }
}

/// Parses a connection id from JS (the inverse of [`conn_js`]).
pub(crate) fn conn_rust(conn: f64) -> Result<ConnId, OverlayError> {
    if conn.fract() != 0.0 || conn.abs() > MAX_SAFE {
        return Err(invalid(format!("{conn} is not a connection id")));
    }
    let conn = conn as i64;
    Ok(if conn < 0 {
        ConnId::inbound((-1 - conn) as u64)
    } else {
        ConnId::from_raw(conn as u64)
    })
}

/// A query id as JS sees it (a number: machines count their queries up from 0 or 1).
pub(crate) fn query_js(query: overlay_core::QueryId) -> f64 {
    query.0 as f64
}

/// A node of an overlay: its id and where it is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Tsify)]
pub struct NodeInfo {
    /// The node's 160-bit id in hex.
    pub id: String,
    /// Its address, `"127.0.0.1:7000"`.
    pub addr: String,
}

impl NodeInfo {
    pub(crate) fn new(id: Id, addr: PeerAddr) -> Self {
        NodeInfo {
            id: hex(id),
            addr: addr.to_string(),
        }
    }
}

/// Defines a datagram protocol's output type (`transmit`, `event`, `wait`) and its
/// conversion from [`Step`].
macro_rules! datagram_output {
    ($(#[$doc:meta])* $name:ident, $event:ty) => {
        $(#[$doc])*
        #[derive(Debug, serde::Serialize, tsify::Tsify)]
        #[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
        #[tsify(missing_as_null)]
        pub enum $name {
            /// Send `datagram` to `to`.
            Transmit {
                /// The destination, `"127.0.0.1:7000"`.
                to: String,
                /// The datagram's bytes.
                #[serde(with = "serde_bytes")]
                #[tsify(type = "Uint8Array")]
                datagram: Vec<u8>,
            },
            /// Something happened.
            Event {
                /// What.
                event: $event,
            },
            /// Drained: call `pollOutput` again at `untilUs` (at once if that is not after
            /// now), or when a datagram arrives or a command is issued; `null`: no timer.
            Wait {
                /// When, in the caller's microseconds.
                until_us: Option<u64>,
            },
        }

        impl TryFrom<overlay_bindings::Step<$event>> for $name {
            type Error = $crate::common::OverlayError;

            fn try_from(step: overlay_bindings::Step<$event>) -> Result<Self, Self::Error> {
                use overlay_bindings::Step;
                Ok(match step {
                    Step::Transmit(overlay_core::Dest::Addr(to), datagram) => $name::Transmit {
                        to: to.to_string(),
                        datagram,
                    },
                    Step::Event(event) => $name::Event { event },
                    Step::Wait(until) => $name::Wait {
                        until_us: until.map($crate::common::micros_js),
                    },
                    // A datagram machine has no connections (the machine contract).
                    Step::Transmit(overlay_core::Dest::Conn(_), _)
                    | Step::Connect(..)
                    | Step::Close(_) => {
                        return Err($crate::common::internal(
                            "a datagram machine asked for a connection",
                        ));
                    }
                })
            }
        }
    };
}

/// Defines a stream protocol's output type (`transmit` on a connection, `connect`,
/// `close`, `event`, `wait`) and its conversion from [`Step`].
macro_rules! stream_output {
    ($(#[$doc:meta])* $name:ident, $event:ty) => {
        $(#[$doc])*
        #[derive(Debug, serde::Serialize, tsify::Tsify)]
        #[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
        #[tsify(missing_as_null)]
        pub enum $name {
            /// Write `bytes` to connection `conn`, in order.
            Transmit {
                /// The connection.
                conn: f64,
                /// The bytes.
                #[serde(with = "serde_bytes")]
                #[tsify(type = "Uint8Array")]
                bytes: Vec<u8>,
            },
            /// Open a connection to `to` and call it `conn`; report `connected` or `closed`.
            Connect {
                /// The id the machine gave it.
                conn: f64,
                /// Whom to dial, `"127.0.0.1:6881"`.
                to: String,
            },
            /// Close connection `conn` (no `closed` report is due for it).
            Close {
                /// The connection.
                conn: f64,
            },
            /// Something happened.
            Event {
                /// What.
                event: $event,
            },
            /// Drained: call `pollOutput` again at `untilUs` (at once if that is not after
            /// now), or when an input arrives or a command is issued; `null`: no timer.
            Wait {
                /// When, in the caller's microseconds.
                until_us: Option<u64>,
            },
        }

        impl TryFrom<overlay_bindings::Step<$event>> for $name {
            type Error = $crate::common::OverlayError;

            fn try_from(step: overlay_bindings::Step<$event>) -> Result<Self, Self::Error> {
                use overlay_bindings::Step;
                use $crate::common::conn_js;
                Ok(match step {
                    Step::Transmit(overlay_core::Dest::Conn(conn), bytes) => $name::Transmit {
                        conn: conn_js(conn),
                        bytes,
                    },
                    Step::Connect(conn, to) => $name::Connect {
                        conn: conn_js(conn),
                        to: to.to_string(),
                    },
                    Step::Close(conn) => $name::Close { conn: conn_js(conn) },
                    Step::Event(event) => $name::Event { event },
                    Step::Wait(until) => $name::Wait {
                        until_us: until.map($crate::common::micros_js),
                    },
                    // A stream machine sends on connections only (the machine contract).
                    Step::Transmit(overlay_core::Dest::Addr(_), _) => {
                        return Err($crate::common::internal("a stream machine sent a datagram"));
                    }
                })
            }
        }
    };
}

pub(crate) use {datagram_output, stream_output};

/// A deadline as a JS number of microseconds: one past 2^53 cannot cross exactly, and is
/// as good as never.
pub(crate) fn micros_js(t: Instant) -> u64 {
    t.as_micros().min(MAX_SAFE as u64)
}

/// A machine owned by a JS object: the shared pump, with JS's times and addresses. JS is
/// single-threaded and wasm-bindgen refuses re-entrant calls, so no lock is needed.
pub(crate) struct Driver<M> {
    pump: Pump<M>,
}

impl<M: Machine> Driver<M> {
    /// Owns `machine` (built by value: the crate's stack is sized for the largest, see
    /// build.rs).
    pub(crate) fn new(machine: M) -> Self {
        Driver {
            pump: Pump::new(Box::new(machine)),
        }
    }

    /// Runs `f` on the machine at the caller's time (a command).
    pub(crate) fn run<R>(
        &mut self,
        now_us: f64,
        f: impl FnOnce(&mut M, Instant) -> Result<R, OverlayError>,
    ) -> Result<R, OverlayError> {
        let (machine, now) = self.pump.at(Instant::from_micros(micros(now_us)?));
        f(machine, now)
    }

    /// The machine, to read (a status).
    pub(crate) fn machine(&self) -> &M {
        self.pump.machine()
    }

    /// The machine, for a command that takes no time.
    pub(crate) fn machine_mut(&mut self) -> &mut M {
        self.pump.machine_mut()
    }

    /// Hands one input to the machine at the caller's time.
    fn input(&mut self, now_us: f64, input: Input<'_>) -> Result<(), OverlayError> {
        self.pump
            .input(Instant::from_micros(micros(now_us)?), input);
        Ok(())
    }

    /// A datagram from `from` (datagram protocols).
    pub(crate) fn datagram(
        &mut self,
        now_us: f64,
        from: &str,
        payload: &[u8],
    ) -> Result<(), OverlayError> {
        let from = peer(from)?;
        self.input(now_us, Input::Datagram { from, payload })
    }

    /// A connection the caller accepted from `peer` (stream protocols); returns its id.
    pub(crate) fn accepted(&mut self, now_us: f64, peer: &str) -> Result<f64, OverlayError> {
        let peer = self::peer(peer)?;
        let now = Instant::from_micros(micros(now_us)?);
        Ok(conn_js(self.pump.accepted(now, peer)))
    }

    /// The dial the machine asked for succeeded.
    pub(crate) fn connected(&mut self, now_us: f64, conn: f64) -> Result<(), OverlayError> {
        let conn = conn_rust(conn)?;
        self.input(now_us, Input::Connected { conn })
    }

    /// Bytes arrived on `conn`.
    pub(crate) fn received(
        &mut self,
        now_us: f64,
        conn: f64,
        bytes: &[u8],
    ) -> Result<(), OverlayError> {
        let conn = conn_rust(conn)?;
        self.input(now_us, Input::Received { conn, bytes })
    }

    /// `conn` closed, or its dial failed.
    pub(crate) fn closed(&mut self, now_us: f64, conn: f64) -> Result<(), OverlayError> {
        let conn = conn_rust(conn)?;
        self.input(now_us, Input::Closed { conn })
    }

    /// The machine's next output, its event converted by `event`, in the protocol's output
    /// type `O`.
    pub(crate) fn poll<E, O: TryFrom<Step<E>, Error = OverlayError>>(
        &mut self,
        now_us: f64,
        event: impl for<'a> FnOnce(M::Event<'a>) -> E,
    ) -> Result<O, OverlayError> {
        let now = Instant::from_micros(micros(now_us)?);
        self.pump.poll(now, event).try_into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_whole_microseconds_below_2_53() {
        assert_eq!(micros(0.0).unwrap(), 0);
        assert_eq!(micros(1e15).unwrap(), 1_000_000_000_000_000);
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, MAX_SAFE * 2.0] {
            assert!(micros(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn connection_ids_round_trip_and_accepted_ones_are_negative() {
        for conn in [
            ConnId::from_raw(0),
            ConnId::from_raw(41),
            ConnId::inbound(0),
            ConnId::inbound(7),
        ] {
            let js = conn_js(conn);
            assert_eq!(js < 0.0, conn.raw() >> 63 == 1);
            assert_eq!(conn_rust(js).unwrap(), conn);
        }
        assert!(conn_rust(0.5).is_err());
    }

    #[test]
    fn hex_ids_parse_strictly() {
        let id = Id([0xab; 20]);
        assert_eq!(hex_id(&hex(id), "an id").unwrap(), id);
        for bad in ["ab", &"g".repeat(40), &"é".repeat(20), &"+1".repeat(20)] {
            assert!(hex20(bad, "an id").is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_parse_in_both_families() {
        assert_eq!(
            peer("127.0.0.1:7000").unwrap().to_string(),
            "127.0.0.1:7000"
        );
        assert_eq!(peer("[::1]:7000").unwrap().to_string(), "[::1]:7000");
        assert!(peer("localhost:7000").is_err());
    }
}
