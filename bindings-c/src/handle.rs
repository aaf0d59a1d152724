//! What every protocol's C API shares: the panic boundary and argument checks, the handle
//! around a machine, and the sans-IO pump (`feed`, `poll_output`) written once.
//!
//! A protocol module implements [`Protocol`] for its opaque handle type (which machine it
//! wraps, and how its events become a C struct) and then writes thin `extern "C"` functions
//! over [`new_handle`], [`free_handle`], [`feed`] (or [`handle_datagram`]),
//! [`poll_output`], [`command`] and [`with_machine`]. Everything that can go wrong at the
//! boundary (a `NULL`, a short buffer, a panic, a handle poisoned by one) is decided here,
//! once.

use crate::result::overlay_result;
use crate::types::overlay_addr;
use core::ffi::c_char;
use overlay_core::{ConnId, Dest, Input, Instant, Machine, Output, PeerAddr, QueryId};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// `overlay_output.wait_until_us` when the machine has no timer: call `poll_output` again
/// only after an input or a command.
pub const OVERLAY_NO_DEADLINE: u64 = u64::MAX;

/// What `poll_output` returned.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum overlay_output_kind {
    /// Nothing: written only with `OVERLAY_RESULT_BUFFER_TOO_SMALL` (then `len` is the
    /// buffer length the output needs; call again with a buffer that large).
    None = 0,
    /// Send the `len` bytes written to the buffer: a datagram to `addr`, or (for stream
    /// protocols) bytes on connection `conn`.
    Transmit = 1,
    /// `event` happened; its variable-length data (a value, a list) is the `len` bytes
    /// written to the buffer.
    Event = 2,
    /// Drained: call `poll_output` again at `wait_until_us` (or at once if that is not
    /// after `now_us`: the machine has more bounded work), or when an input arrives or a
    /// command is issued, whichever comes first.
    Wait = 3,
    /// Stream protocols: open a connection to `addr` and call it `conn`.
    Connect = 4,
    /// Stream protocols: close connection `conn`.
    Close = 5,
}

/// One output of a machine, as `overlay_X_poll_output` writes it; each protocol names its
/// own with its event struct (`overlay_chord_output`, `overlay_dht_output`,
/// `overlay_gnutella_output`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct overlay_output<E> {
    /// Which kind of output this is; the fields it uses are named on each kind.
    pub kind: overlay_output_kind,
    /// `TRANSMIT` of a datagram: where to send it; `CONNECT`: whom to dial. Family 0
    /// otherwise.
    pub addr: overlay_addr,
    /// `TRANSMIT` on a stream, `CONNECT`, `CLOSE`: the connection (stream protocols only;
    /// 0 otherwise).
    pub conn: u64,
    /// Bytes written to the caller's buffer (`TRANSMIT`, `EVENT`); with
    /// `OVERLAY_RESULT_BUFFER_TOO_SMALL`, the bytes the buffer must hold.
    pub len: usize,
    /// `WAIT`: when to call again, in the caller's microseconds, or `OVERLAY_NO_DEADLINE`.
    pub wait_until_us: u64,
    /// `EVENT`: what happened (zeroed for the other kinds).
    pub event: E,
}

/// A protocol's opaque handle type: which machine it wraps, and how that machine's events
/// become the protocol's C event struct.
pub trait Protocol: Sized {
    /// The machine.
    type Machine: Machine;
    /// The C event struct; its `Default` is the all-zero event of non-event outputs.
    type Event: Copy + Default;

    /// Converts one event, appending its variable-length data (a value, a list of
    /// records) to `data`.
    fn event(event: <Self::Machine as Machine>::Event<'_>, data: &mut Vec<u8>) -> Self::Event;
    /// The opaque handle around a handle.
    fn wrap(handle: Handle<Self>) -> Self;
    /// The handle inside the opaque handle.
    fn handle(&mut self) -> &mut Handle<Self>;
}

/// An output taken from the machine, kept until the caller's buffer takes it.
#[derive(Clone, Copy, Debug)]
enum Held<E> {
    Transmit(Dest),
    Connect(ConnId, PeerAddr),
    Close(ConnId),
    Event(E),
    Wait(Option<Instant>),
}

/// A machine owned by C, and what the boundary keeps beside it.
pub struct Handle<P: Protocol> {
    /// Boxed: machines are large, fixed-size structs.
    machine: Box<P::Machine>,
    /// The output `poll_output` took from the machine but could not deliver (the caller's
    /// buffer was too small); the next call delivers it first.
    held: Option<Held<P::Event>>,
    /// The held output's bytes: a payload, or an event's data. Reused, so that a running
    /// handle does not allocate.
    data: Vec<u8>,
    /// The latest `now` seen: the contract's time never goes backwards, so an earlier
    /// `now_us` from the caller is taken as this.
    now: Instant,
    /// An earlier call panicked: the machine may be half-way through a change.
    poisoned: bool,
}

impl<P: Protocol> Handle<P> {
    /// The machine, for a protocol's status.
    pub fn machine(&mut self) -> &mut P::Machine {
        &mut self.machine
    }

    /// The caller's time as an instant, never earlier than the last one.
    fn now(&mut self, now_us: u64) -> Instant {
        self.now = self.now.max(Instant::from_micros(now_us));
        self.now
    }

    /// Takes the machine's next output unless one is held already, copying what it
    /// borrows from the machine into `data`.
    fn hold_next(&mut self, now: Instant) -> Held<P::Event> {
        if let Some(held) = self.held {
            return held;
        }
        self.data.clear();
        let held = match self.machine.poll_output(now) {
            Output::Transmit { to, payload } => {
                self.data.extend_from_slice(payload);
                Held::Transmit(to)
            }
            Output::Connect { conn, peer } => Held::Connect(conn, peer),
            Output::Close { conn } => Held::Close(conn),
            Output::Event(e) => Held::Event(P::event(e, &mut self.data)),
            Output::Wait(deadline) => Held::Wait(deadline),
        };
        self.held = Some(held);
        held
    }
}

/// Runs `f` behind the panic boundary: a panic becomes `OVERLAY_RESULT_PANIC` instead of
/// unwinding into C (which would abort the process).
pub fn boundary(f: impl FnOnce() -> Result<(), overlay_result>) -> overlay_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => overlay_result::Ok,
        Ok(Err(e)) => e,
        Err(_) => overlay_result::Panic,
    }
}

/// Runs `f` on the handle behind `h`: `NULL` is `OVERLAY_RESULT_NULL_ARGUMENT`, a poisoned
/// handle `OVERLAY_RESULT_POISONED`, and a panic in `f` poisons the handle.
///
/// # Safety
///
/// `h` must be `NULL` or a handle from [`new_handle`] not yet freed, used by one thread
/// at a time.
pub unsafe fn with_handle<P: Protocol>(
    h: *mut P,
    f: impl FnOnce(&mut Handle<P>) -> Result<(), overlay_result>,
) -> overlay_result {
    if h.is_null() {
        return overlay_result::NullArgument;
    }
    // SAFETY: not NULL, and the caller guarantees a live handle that no one else uses now.
    let handle = unsafe { &mut *h }.handle();
    if handle.poisoned {
        return overlay_result::Poisoned;
    }
    let result = boundary(|| f(handle));
    if result == overlay_result::Panic {
        // SAFETY: as above; the borrow that `f` held ended when the panic was caught.
        unsafe { &mut *h }.handle().poisoned = true;
    }
    result
}

/// Runs `f` on the machine behind `h` at the caller's time (a command without an id, a
/// status read).
///
/// # Safety
///
/// As [`with_handle`].
pub unsafe fn with_machine<P: Protocol>(
    h: *mut P,
    now_us: u64,
    f: impl FnOnce(&mut P::Machine, Instant) -> Result<(), overlay_result>,
) -> overlay_result {
    let run = |handle: &mut Handle<P>| {
        let now = handle.now(now_us);
        f(&mut handle.machine, now)
    };
    // SAFETY: as the caller guarantees above.
    unsafe { with_handle(h, run) }
}

/// Runs a command whose result arrives in an event: checks `query` first (so that a
/// `NULL` changes nothing), starts the command with `start` (which reads its own arguments
/// before it touches the machine), and writes the command's id to `*query`.
///
/// # Safety
///
/// As [`with_handle`]; `query` must be `NULL` or point to a writable `uint64_t`.
pub unsafe fn command<P: Protocol>(
    h: *mut P,
    now_us: u64,
    query: *mut u64,
    start: impl FnOnce(&mut P::Machine, Instant) -> Result<QueryId, overlay_result>,
) -> overlay_result {
    let run = |m: &mut P::Machine, now| {
        if query.is_null() {
            return Err(overlay_result::NullArgument);
        }
        let id = start(m, now)?;
        // SAFETY: not NULL (checked above), writable as the caller guarantees.
        unsafe { write_out(query, id.0) }
    };
    // SAFETY: as the caller guarantees above.
    unsafe { with_machine(h, now_us, run) }
}

/// Boxes a new handle around `machine` and writes the pointer to `*out`.
///
/// # Safety
///
/// `out` must be `NULL` or point to a writable pointer.
pub unsafe fn new_handle<P: Protocol>(
    machine: impl FnOnce() -> P::Machine,
    out: *mut *mut P,
) -> Result<(), overlay_result> {
    if out.is_null() {
        return Err(overlay_result::NullArgument);
    }
    let handle = Handle {
        machine: Box::new(machine()),
        held: None,
        data: Vec::with_capacity(2048),
        now: Instant::ZERO,
        poisoned: false,
    };
    let h = Box::into_raw(Box::new(P::wrap(handle)));
    // SAFETY: not NULL, and the caller guarantees it is writable.
    unsafe { out.write(h) };
    Ok(())
}

/// Frees a handle from [`new_handle`]; `NULL` is a no-op. Never panics into C.
///
/// # Safety
///
/// `h` must be `NULL` or a handle from [`new_handle`] not yet freed; it must not be used
/// afterwards.
pub unsafe fn free_handle<P: Protocol>(h: *mut P) {
    if h.is_null() {
        return;
    }
    // Dropping a machine cannot panic (plain data), but nothing may unwind into C.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller gives back ownership of a pointer from `Box::into_raw`.
        drop(unsafe { Box::from_raw(h) })
    }));
}

/// Hands one input to the machine: `input` reads the caller's arguments (inside the
/// boundary, after the handle is checked) and builds it. Malformed bytes are the
/// machine's to drop and count: they are no error here.
///
/// # Safety
///
/// As [`with_handle`]; `input` may read only pointers the caller guarantees.
pub unsafe fn feed<'a, P: Protocol>(
    h: *mut P,
    now_us: u64,
    input: impl FnOnce() -> Result<Input<'a>, overlay_result>,
) -> overlay_result {
    let feed = |handle: &mut Handle<P>| {
        let input = input()?;
        let now = handle.now(now_us);
        handle.machine.handle_input(now, input);
        Ok(())
    };
    // SAFETY: the caller guarantees `h` as documented above.
    unsafe { with_handle(h, feed) }
}

/// Hands a datagram to the machine (the contract's `Input::Datagram`).
///
/// # Safety
///
/// As [`with_handle`]; `from` must be `NULL` or point to an `overlay_addr`; `bytes` must
/// point to `len` readable bytes (or be `NULL` with `len` 0).
pub unsafe fn handle_datagram<P: Protocol>(
    h: *mut P,
    now_us: u64,
    from: *const overlay_addr,
    bytes: *const u8,
    len: usize,
) -> overlay_result {
    let input = || {
        // SAFETY: the caller guarantees `from`, `bytes` and `len` as documented above.
        let (from, payload) = unsafe { (read_arg(from)?.to_peer()?, bytes_arg(bytes, len)?) };
        Ok(Input::Datagram { from, payload })
    };
    // SAFETY: the caller guarantees `h` as documented above.
    unsafe { feed(h, now_us, input) }
}

/// Writes the machine's next output to `*out`, and its bytes (a payload, an event's data)
/// to `buf`. If they do not fit in `cap` bytes, returns `OVERLAY_RESULT_BUFFER_TOO_SMALL`
/// with `out->kind` `NONE` and `out->len` the length needed, and keeps the output for the
/// next call: nothing is lost and nothing else changes.
///
/// # Safety
///
/// As [`with_handle`]; `buf` must point to `cap` writable bytes (or be `NULL` with `cap`
/// 0); `out` must be `NULL` or point to a writable output struct.
pub unsafe fn poll_output<P: Protocol>(
    h: *mut P,
    now_us: u64,
    buf: *mut u8,
    cap: usize,
    out: *mut overlay_output<P::Event>,
) -> overlay_result {
    let poll = |handle: &mut Handle<P>| {
        if out.is_null() || (buf.is_null() && cap > 0) {
            return Err(overlay_result::NullArgument);
        }
        let now = handle.now(now_us);
        let held = handle.hold_next(now);
        let len = handle.data.len();
        let mut output = overlay_output {
            kind: overlay_output_kind::None,
            addr: overlay_addr::default(),
            conn: 0,
            len,
            wait_until_us: 0,
            event: P::Event::default(),
        };
        if len > cap {
            // SAFETY: not NULL (checked above), writable as the caller guarantees.
            unsafe { out.write_unaligned(output) };
            return Err(overlay_result::BufferTooSmall);
        }
        match held {
            Held::Transmit(Dest::Addr(a)) => {
                output.kind = overlay_output_kind::Transmit;
                output.addr = overlay_addr::from_peer(a);
            }
            Held::Transmit(Dest::Conn(c)) => {
                output.kind = overlay_output_kind::Transmit;
                output.conn = c.raw();
            }
            Held::Connect(c, peer) => {
                output.kind = overlay_output_kind::Connect;
                output.conn = c.raw();
                output.addr = overlay_addr::from_peer(peer);
            }
            Held::Close(c) => {
                output.kind = overlay_output_kind::Close;
                output.conn = c.raw();
            }
            Held::Event(e) => {
                output.kind = overlay_output_kind::Event;
                output.event = e;
            }
            Held::Wait(deadline) => {
                output.kind = overlay_output_kind::Wait;
                output.wait_until_us = deadline.map_or(OVERLAY_NO_DEADLINE, |t| t.as_micros());
            }
        }
        if len > 0 {
            // SAFETY: `buf` holds `cap >= len` writable bytes (checked above, as the caller
            // guarantees); `data` is the handle's own, so the two cannot overlap.
            unsafe { core::ptr::copy_nonoverlapping(handle.data.as_ptr(), buf, len) };
        }
        handle.held = None;
        // SAFETY: not NULL (checked above), writable as the caller guarantees.
        unsafe { out.write_unaligned(output) };
        Ok(())
    };
    // SAFETY: the caller guarantees `h` as documented above.
    unsafe { with_handle(h, poll) }
}

/// Reads a required argument.
///
/// # Safety
///
/// `p` must be `NULL` or point to a readable, initialised `T`.
pub unsafe fn read_arg<T: Copy>(p: *const T) -> Result<T, overlay_result> {
    if p.is_null() {
        return Err(overlay_result::NullArgument);
    }
    // SAFETY: not NULL, and the caller guarantees a readable `T`. Unaligned reads are
    // allowed, so a C struct inside a packed buffer is read correctly too.
    Ok(unsafe { p.read_unaligned() })
}

/// Writes a required out-parameter.
///
/// # Safety
///
/// `p` must be `NULL` or point to memory writable as a `T`.
pub unsafe fn write_out<T>(p: *mut T, value: T) -> Result<(), overlay_result> {
    if p.is_null() {
        return Err(overlay_result::NullArgument);
    }
    // SAFETY: not NULL, and the caller guarantees it is writable.
    unsafe { p.write_unaligned(value) };
    Ok(())
}

/// A byte-slice argument: `NULL` is allowed only with length 0.
///
/// # Safety
///
/// `p` must be `NULL` or point to `len` readable bytes that stay unchanged during the call.
pub unsafe fn bytes_arg<'a>(p: *const u8, len: usize) -> Result<&'a [u8], overlay_result> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(overlay_result::NullArgument);
    }
    if len > isize::MAX as usize {
        return Err(overlay_result::InvalidArgument);
    }
    // SAFETY: not NULL, at most isize::MAX bytes, readable as the caller guarantees.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// A list argument of `count` `T`s: `NULL` is allowed only with count 0.
///
/// # Safety
///
/// `p` must be `NULL` or point to `count` readable, initialised `T`s.
pub unsafe fn list_arg<T: Copy>(
    p: *const T,
    count: usize,
    mut each: impl FnMut(T) -> Result<(), overlay_result>,
) -> Result<(), overlay_result> {
    if count == 0 {
        return Ok(());
    }
    if p.is_null() {
        return Err(overlay_result::NullArgument);
    }
    if count > isize::MAX as usize / core::mem::size_of::<T>().max(1) {
        return Err(overlay_result::InvalidArgument);
    }
    for i in 0..count {
        // SAFETY: `i < count`, and the caller guarantees `count` readable `T`s.
        each(unsafe { p.add(i).read_unaligned() })?;
    }
    Ok(())
}

/// Writes `text` and a NUL to `buf` if `cap` holds both, and its length without the NUL to
/// `*out_len` if that is not `NULL` (also when `buf` is too small).
///
/// # Safety
///
/// `buf` must point to `cap` writable bytes (or be `NULL` with `cap` 0); `out_len` must be
/// `NULL` or point to a writable `size_t`.
pub unsafe fn out_text(
    text: &str,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> Result<(), overlay_result> {
    if buf.is_null() && cap > 0 {
        return Err(overlay_result::NullArgument);
    }
    if !out_len.is_null() {
        // SAFETY: not NULL, and the caller guarantees it is writable.
        unsafe { out_len.write_unaligned(text.len()) };
    }
    if text.len() >= cap {
        return Err(overlay_result::BufferTooSmall);
    }
    // SAFETY: `buf` holds `cap > text.len()` writable bytes, as the caller guarantees.
    unsafe {
        core::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        buf.add(text.len()).write(0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Echoes every datagram back to its sender, reports its length as an event, and
    /// panics on the datagram `b"panic"`: enough to drive the shared layer alone.
    #[derive(Default)]
    struct Echo {
        queue: VecDeque<(PeerAddr, Vec<u8>)>,
        sending: Vec<u8>,
        events: VecDeque<u32>,
    }

    impl Machine for Echo {
        type Event<'a> = u32;

        fn handle_input(&mut self, _now: Instant, input: Input<'_>) {
            if let Input::Datagram { from, payload } = input {
                assert!(payload != b"panic", "a bug in a machine");
                self.queue.push_back((from, payload.to_vec()));
                self.events.push_back(payload.len() as u32);
            }
        }

        fn poll_output(&mut self, now: Instant) -> Output<'_, u32> {
            if let Some((to, bytes)) = self.queue.pop_front() {
                self.sending = bytes;
                return Output::Transmit {
                    to: Dest::Addr(to),
                    payload: &self.sending,
                };
            }
            match self.events.pop_front() {
                Some(e) => Output::Event(e),
                None => Output::Wait(Some(now)),
            }
        }
    }

    struct echo(Handle<echo>);

    impl Protocol for echo {
        type Machine = Echo;
        type Event = u32;
        fn event(event: u32, data: &mut Vec<u8>) -> u32 {
            data.extend_from_slice(&event.to_le_bytes());
            event
        }
        fn wrap(handle: Handle<Self>) -> Self {
            echo(handle)
        }
        fn handle(&mut self) -> &mut Handle<Self> {
            &mut self.0
        }
    }

    fn new_echo() -> *mut echo {
        let mut h = core::ptr::null_mut();
        // SAFETY: `h` is a writable pointer.
        unsafe { new_handle(Echo::default, &mut h) }.unwrap();
        h
    }

    fn from() -> overlay_addr {
        overlay_addr::from_peer(PeerAddr::v4([10, 0, 0, 1], 9))
    }

    fn send(h: *mut echo, now_us: u64, bytes: &[u8]) -> overlay_result {
        // SAFETY: a live handle, a readable address and slice.
        unsafe { handle_datagram(h, now_us, &from(), bytes.as_ptr(), bytes.len()) }
    }

    fn poll(h: *mut echo, buf: &mut [u8]) -> (overlay_result, overlay_output<u32>) {
        let mut out = overlay_output {
            kind: overlay_output_kind::Wait,
            addr: overlay_addr::default(),
            conn: 7,
            len: 99,
            wait_until_us: 5,
            event: 0,
        };
        // SAFETY: a live handle, a writable buffer of its length and a writable output.
        let r = unsafe { poll_output(h, 0, buf.as_mut_ptr(), buf.len(), &mut out) };
        (r, out)
    }

    #[test]
    fn a_short_buffer_changes_nothing_and_the_output_waits_for_a_larger_one() {
        let h = new_echo();
        assert_eq!(send(h, 1, b"0123456789"), overlay_result::Ok);
        let mut small = [0xaa; 4];
        let (r, out) = poll(h, &mut small);
        assert_eq!(r, overlay_result::BufferTooSmall);
        assert_eq!((out.kind, out.len), (overlay_output_kind::None, 10));
        assert_eq!(small, [0xaa; 4], "nothing written");
        // Another input meanwhile: the held output still comes first, then the rest in order.
        assert_eq!(send(h, 2, b"xy"), overlay_result::Ok);
        let mut buf = [0; 16];
        let (r, out) = poll(h, &mut buf);
        assert_eq!(
            (r, out.kind),
            (overlay_result::Ok, overlay_output_kind::Transmit)
        );
        assert_eq!(&buf[..out.len], b"0123456789");
        assert_eq!(out.addr, from());
        let (_, out) = poll(h, &mut buf);
        assert_eq!(&buf[..out.len], b"xy");
        let (_, out) = poll(h, &mut buf);
        assert_eq!(
            (out.kind, out.event, out.len),
            (overlay_output_kind::Event, 10, 4)
        );
        let (_, out) = poll(h, &mut buf);
        assert_eq!((out.kind, out.event), (overlay_output_kind::Event, 2));
        let (_, out) = poll(h, &mut buf);
        assert_eq!(out.kind, overlay_output_kind::Wait);
        assert_eq!(
            out.wait_until_us, 2,
            "time never goes back: now_us 0 is taken as 2"
        );
        // SAFETY: the handle from `new_echo`, freed once.
        unsafe { free_handle(h) };
    }

    #[test]
    fn a_panic_is_caught_and_poisons_the_handle() {
        let h = new_echo();
        assert_eq!(send(h, 0, b"panic"), overlay_result::Panic);
        assert_eq!(send(h, 0, b"fine"), overlay_result::Poisoned);
        let mut buf = [0; 8];
        assert_eq!(poll(h, &mut buf).0, overlay_result::Poisoned);
        // SAFETY: the handle from `new_echo`, freed once; NULL is a no-op.
        unsafe {
            free_handle(h);
            free_handle::<echo>(core::ptr::null_mut());
        }
    }

    #[test]
    fn null_and_length_checks_come_first() {
        let h = new_echo();
        let null = core::ptr::null_mut::<echo>();
        assert_eq!(send(null, 0, b"x"), overlay_result::NullArgument);
        // SAFETY: NULL pointers with non-zero lengths, which the checks refuse.
        unsafe {
            assert_eq!(
                handle_datagram(h, 0, core::ptr::null(), b"x".as_ptr(), 1),
                overlay_result::NullArgument
            );
            assert_eq!(
                handle_datagram(h, 0, &from(), core::ptr::null(), 1),
                overlay_result::NullArgument
            );
            let mut out = core::mem::MaybeUninit::uninit();
            assert_eq!(
                poll_output(h, 0, core::ptr::null_mut(), 8, out.as_mut_ptr()),
                overlay_result::NullArgument
            );
            let bad = overlay_addr {
                family: 0,
                ..from()
            };
            assert_eq!(
                handle_datagram(h, 0, &bad, b"x".as_ptr(), 1),
                overlay_result::InvalidArgument
            );
            // An empty datagram may come with a NULL pointer.
            assert_eq!(
                handle_datagram(h, 0, &from(), core::ptr::null(), 0),
                overlay_result::Ok
            );
            free_handle(h);
        }
    }

    #[test]
    fn machines_fit_a_handle() {
        // Built on the stack before they are boxed: keep them well inside a thread's stack.
        let chord = size_of::<crate::chord::ChordNode>();
        let dht = size_of::<crate::dht::DhtNode>();
        let gnutella = size_of::<crate::gnutella::GnutellaNode>();
        println!("chord {chord} bytes, dht {dht} bytes, gnutella {gnutella} bytes");
        assert!(chord < 1 << 20 && dht < 1 << 20 && gnutella < 1 << 20);
    }
}
