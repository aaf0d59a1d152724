//! overlay-ffi: the C API of overlay-core's machines (`include/overlay.h`, generated from
//! this crate by cbindgen and committed).
//!
//! The discipline is rustls-ffi's (`librustls/src/ffi.rs`, `panic.rs`, `error.rs`): opaque
//! handles that C owns through a pointer and gives back with `*_free` (which takes `NULL`
//! too); every function behind a panic boundary, checking its pointers and lengths before
//! it looks at anything; numeric result codes ([`overlay_result`]) with
//! [`overlay_result_message`]; caller-owned buffers with the length written back, and
//! a buffer too small refused with a code of its own, changing nothing.
//!
//! The machines keep the sans-IO contract of `overlay_core::Machine`, in C terms:
//!
//! ```c
//! overlay_dht_handle_datagram(h, now_us, &from, bytes, len);   // an input
//! overlay_dht_get_peers(h, now_us, &info_hash, &query);        // a command: an id now,
//! for (;;) {                                                     // its result later
//!     overlay_dht_output out;
//!     overlay_dht_poll_output(h, now_us, buf, sizeof buf, &out);
//!     if (out.kind == OVERLAY_OUTPUT_KIND_TRANSMIT) sendto(fd, buf, out.len, ...);
//!     else if (out.kind == OVERLAY_OUTPUT_KIND_EVENT) handle(&out.event, buf, out.len);
//!     else break;                  // WAIT: sleep until out.wait_until_us or an input
//! }
//! ```
//!
//! The crate is laid out so that a protocol is a small, mechanical addition: [`handle`]
//! holds everything shared (the handle, the generic pump, the output struct, the panic
//! boundary and argument checks), and each protocol module ([`chord`], [`dht`],
//! [`gnutella`]) adds its constructor and config, its commands, its status and the
//! conversion of its events. Stream protocols (Gnutella) use the same output struct, with
//! `CONNECT` and `CLOSE` outputs and `conn` in place of `addr`, and feed the four stream
//! inputs (accepted, connected, received, closed) through the same `handle::feed`.
//! docs/c.md is the guide for C programmers.
//!
//! `unsafe` lives only here, at the FFI edge: every block says why it is sound.

// C names: the types keep the snake_case names the header gives them.
#![allow(non_camel_case_types)]
#![warn(missing_docs)]

pub mod chord;
pub mod dht;
pub mod gnutella;
pub mod handle;
pub mod result;
pub mod types;

pub use handle::{overlay_output, overlay_output_kind};
pub use result::{overlay_result, overlay_result_message};
pub use types::{overlay_addr, overlay_id, overlay_node};
