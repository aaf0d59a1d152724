//! The WebSocket bridge's frames in JS (`overlay_core::bridge`): a tab sends each datagram
//! as `bridgeFrame(to, datagram)` and reads each binary message with `bridgeUnframe`.

use crate::common::{OverlayError, internal, invalid, js, peer};
use overlay_core::bridge::{self, MAX_HEADER};
use serde::Serialize;
use tsify::{Ts, Tsify};
use wasm_bindgen::prelude::*;

/// A datagram that came through the bridge.
#[derive(Debug, Serialize, Tsify)]
pub struct Unframed {
    /// Its source, `"127.0.0.1:7000"`.
    pub from: String,
    /// Its bytes.
    #[serde(with = "serde_bytes")]
    #[tsify(type = "Uint8Array")]
    pub datagram: Vec<u8>,
}

/// The binary WebSocket message that sends `datagram` to `to` through the bridge.
#[wasm_bindgen(js_name = bridgeFrame)]
pub fn bridge_frame(to: &str, datagram: &[u8]) -> Result<Vec<u8>, OverlayError> {
    let to = peer(to)?;
    let mut frame = vec![0; MAX_HEADER + datagram.len()];
    let n = bridge::encode(to, datagram, &mut frame)
        .map_err(|e| internal(format!("a frame did not fit: {e:?}")))?;
    frame.truncate(n);
    Ok(frame)
}

/// The datagram in a binary WebSocket message from the bridge, and its source.
#[wasm_bindgen(js_name = bridgeUnframe)]
pub fn bridge_unframe(frame: &[u8]) -> Result<Ts<Unframed>, OverlayError> {
    let (from, datagram) =
        bridge::decode(frame).map_err(|_| invalid("not a bridge frame (docs/wasm.md)"))?;
    js(&Unframed {
        from: from.to_string(),
        datagram: datagram.to_vec(),
    })
}
