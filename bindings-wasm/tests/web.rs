//! The classes as JS sees them, run inside a real JS engine by `wasm-bindgen-test`: under
//! Node, and in headless Chromium with `WASM_BINDGEN_USE_BROWSER=1` (bindings-wasm/test.sh
//! runs both). Native `cargo test` skips this file: it needs the wasm32 target.
#![cfg(target_arch = "wasm32")]

use js_sys::{Reflect, Uint8Array};
use overlay_wasm::{ChordNode, DhtNode, TorrentSession, bridge_frame, bridge_unframe};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &key.into()).expect("an object")
}

/// The `code` of a thrown error, which must be a JS `Error`.
fn code<T>(result: Result<T, impl Into<JsValue>>) -> String {
    let Err(e) = result else { panic!("no error") };
    let e: JsValue = e.into();
    assert!(e.is_instance_of::<js_sys::Error>(), "errors are JS Errors");
    get(&e, "code").as_string().expect("a code")
}

#[wasm_bindgen_test]
fn outputs_are_plain_objects_tagged_by_type() {
    let mut a = ChordNode::new("127.0.0.1:7000", 1.0, None).unwrap();
    a.create(0.0).unwrap();
    let mut b = ChordNode::new("127.0.0.1:7001", 2.0, None).unwrap();
    let query = b.join(0.0, "127.0.0.1:7000").unwrap();
    assert_eq!(query, 1.0);
    let out: JsValue = b.poll_output(0.0).unwrap().into();
    assert_eq!(get(&out, "type").as_string().unwrap(), "transmit");
    assert_eq!(get(&out, "to").as_string().unwrap(), "127.0.0.1:7000");
    let datagram: Uint8Array = get(&out, "datagram")
        .dyn_into()
        .expect("bytes are a Uint8Array");
    a.handle_datagram(1.0, "127.0.0.1:7001", &datagram.to_vec())
        .unwrap();
    let reply: JsValue = a.poll_output(1.0).unwrap().into();
    assert_eq!(get(&reply, "type").as_string().unwrap(), "transmit");
    let wait: JsValue = a.poll_output(1.0).unwrap().into();
    assert_eq!(get(&wait, "type").as_string().unwrap(), "wait");
    assert!(get(&wait, "untilUs").as_f64().unwrap() > 1.0);
    let status: JsValue = a.status().unwrap().into();
    assert_eq!(get(&status, "phase").as_string().unwrap(), "member");
    assert!(
        get(&status, "predecessor").is_null(),
        "absent values are null"
    );
    assert_eq!(get(&status, "received").as_f64(), Some(1.0));
}

#[wasm_bindgen_test]
fn refusals_are_errors_with_codes() {
    let mut c = ChordNode::new("127.0.0.1:7000", 1.0, None).unwrap();
    assert_eq!(code(c.put(0.0, b"k", b"v")), "NotMember");
    assert_eq!(code(c.join(f64::NAN, "127.0.0.1:1")), "InvalidArgument");
    assert_eq!(
        code(ChordNode::new("nowhere", 1.0, None)),
        "InvalidArgument"
    );
    let mut d = DhtNode::new("127.0.0.1:6881", 1.0, None).unwrap();
    assert_eq!(code(d.bootstrap(0.0, vec![])), "NoNodes");
    assert_eq!(code(d.put(0.0, b"not bencode")), "BadItem");
    assert_eq!(code(bridge_unframe(&[9, 9])), "InvalidArgument");
}

#[wasm_bindgen_test]
fn a_torrent_session_is_built_on_the_wasm_stack() {
    // 1024 pieces of 16 KiB (the session's most) in a minimal BEP 3 metainfo.
    let mut torrent =
        b"d4:infod6:lengthi16777216e4:name1:x12:piece lengthi16384e6:pieces20480:".to_vec();
    torrent.extend(std::iter::repeat_n(0u8, 20 * 1024));
    torrent.extend(b"ee");
    let config = js_sys::Object::new();
    Reflect::set(&config, &"peerId".into(), &"00".repeat(20).into()).unwrap();
    let mut s =
        TorrentSession::new(&torrent, tsify::Ts::new_unchecked(config.into()), 1.0).unwrap();
    assert_eq!(
        get(&s.status(0.0).unwrap().into(), "pieces").as_f64(),
        Some(1024.0)
    );
    let out: JsValue = s.poll_output(0.0).unwrap().into();
    assert_eq!(get(&out, "type").as_string().unwrap(), "wait");
}

#[wasm_bindgen_test]
fn bridge_frames_round_trip() {
    let frame = bridge_frame("[::1]:7000", b"ping").unwrap();
    assert_eq!(frame[0], 18);
    let back: JsValue = bridge_unframe(&frame).unwrap().into();
    assert_eq!(get(&back, "from").as_string().unwrap(), "[::1]:7000");
}

/// What each class's machine costs in a tab's memory (wasm32): printed with `--nocapture`,
/// and the torrent session bounded so that it builds on the 16 MiB stack with room to spare.
#[wasm_bindgen_test]
fn machine_sizes() {
    use wasm_bindgen_test::console_log;
    let sizes = [
        ("ChordNode", size_of::<overlay_wasm::ChordMachine>()),
        ("DhtNode", size_of::<overlay_wasm::DhtMachine>()),
        (
            "GnutellaServent",
            size_of::<overlay_wasm::GnutellaMachine>(),
        ),
        ("TorrentSession", size_of::<overlay_wasm::TorrentMachine>()),
    ];
    for (class, bytes) in sizes {
        console_log!("{class}: {bytes} bytes");
    }
    assert!(
        sizes[3].1 < 2 << 20,
        "a torrent session is {} bytes",
        sizes[3].1
    );
}
