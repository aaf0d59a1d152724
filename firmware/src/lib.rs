//! An overlay peer on a microcontroller: embassy-net carries the datagrams of core's
//! machines (a Mainline DHT node and a Chord node, each behind a cargo feature), and the
//! boards supply the rest.
//!
//! Everything here is board-independent: the pump that drives a [`Machine`] from a UDP
//! socket ([`peer`]), the protocols' tasks ([`dht`], [`chord`]), the executor that sleeps
//! with WFI ([`executor`]), settings fixed at build time ([`settings`]), saved routing state
//! ([`storage`]) and the log ([`mod@log`]). A board (`src/bin/*.rs`, and `mps2` for QEMU's)
//! brings up the network device, time and a console, then calls [`spawn_peers`].
//!
//! [`Machine`]: overlay_core::Machine
#![no_std]

#[cfg(not(any(feature = "dht", feature = "chord")))]
compile_error!("build the firmware with at least one protocol: feature `dht` or `chord`");

pub mod executor;
pub mod log;
pub mod peer;
pub mod settings;
pub mod stack;
pub mod storage;

#[cfg(feature = "chord")]
pub mod chord;
#[cfg(feature = "dht")]
pub mod dht;
#[cfg(feature = "mps2-an386")]
pub mod mps2;

use core::sync::atomic::{AtomicBool, Ordering};
use embassy_executor::Spawner;
use embassy_net::{Stack, StackResources};
use static_cell::{ConstStaticCell, StaticCell};

/// Where each protocol keeps its routing state across restarts.
pub struct Storages {
    /// The DHT node's id and table.
    #[cfg(feature = "dht")]
    pub dht: &'static mut dyn storage::Storage,
    /// The Chord node's successors and predecessor.
    #[cfg(feature = "chord")]
    pub chord: &'static mut dyn storage::Storage,
}

impl Storages {
    /// Records in RAM that a reset keeps ([`storage::RamStorage`], `.uninit`): for a board
    /// without a flash driver here, and QEMU. Once only: a second call panics.
    pub fn in_retained_ram() -> Storages {
        use core::mem::MaybeUninit;
        use storage::RamStorage;
        static TAKEN: AtomicBool = AtomicBool::new(false);
        assert!(
            !TAKEN.swap(true, Ordering::AcqRel),
            "the records are handed out once"
        );
        const RECORD: usize = 512;
        #[cfg(feature = "dht")]
        #[unsafe(link_section = ".uninit.overlay_dht")]
        static mut DHT: MaybeUninit<[u8; RECORD]> = MaybeUninit::uninit();
        #[cfg(feature = "chord")]
        #[unsafe(link_section = ".uninit.overlay_chord")]
        static mut CHORD: MaybeUninit<[u8; RECORD]> = MaybeUninit::uninit();
        #[cfg(feature = "dht")]
        static DHT_STORAGE: StaticCell<RamStorage<RECORD>> = StaticCell::new();
        #[cfg(feature = "chord")]
        static CHORD_STORAGE: StaticCell<RamStorage<RECORD>> = StaticCell::new();
        // SAFETY: `TAKEN` makes this the only use of the records.
        unsafe {
            Storages {
                #[cfg(feature = "dht")]
                dht: DHT_STORAGE.init(RamStorage::new(&raw mut DHT)),
                #[cfg(feature = "chord")]
                chord: CHORD_STORAGE.init(RamStorage::new(&raw mut CHORD)),
            }
        }
    }
}

/// The network stack on `device`, at the static address in [`settings`]: the stack, and
/// the runner a board's task must run (embassy tasks cannot be generic). Once only.
pub fn network<D: embassy_net_driver::Driver>(
    device: D,
    seed: u64,
) -> (Stack<'static>, embassy_net::Runner<'static, D>) {
    // One socket per protocol.
    static RESOURCES: ConstStaticCell<StackResources<2>> =
        ConstStaticCell::new(StackResources::new());
    let config = embassy_net::Config::ipv4_static(settings::network());
    embassy_net::new(device, config, RESOURCES.take(), seed)
}

/// Starts a task for each protocol the firmware was built with, on `stack`, and one that
/// reports memory use. `seed` seeds the machines' random choices (from a hardware RNG, or
/// derived from the MAC).
pub fn spawn_peers(spawner: Spawner, stack: Stack<'static>, seed: u64, storages: Storages) {
    spawner.spawn(monitor().expect("the monitor task is spawned once"));
    #[cfg(feature = "dht")]
    spawner.spawn(dht::task(stack, seed, storages.dht).expect("the DHT task is spawned once"));
    #[cfg(feature = "chord")]
    spawner.spawn(
        chord::task(stack, seed ^ 0x9e37_79b9_7f4a_7c15, storages.chord)
            .expect("the Chord task is spawned once"),
    );
}

/// A 64-bit seed from a MAC address, for boards without a random number generator: peers
/// on one network still differ, and a board keeps its identity across restarts.
pub fn seed_from_mac(mac: [u8; 6]) -> u64 {
    let digest = overlay_core::Id::sha256(&mac);
    u64::from_le_bytes(digest.0[..8].try_into().expect("8 bytes"))
}

/// Logs the stack's high-water mark now and then (see [`stack`]).
#[embassy_executor::task]
async fn monitor() -> ! {
    loop {
        log!(
            "status memory stack_used={} stack_size={}",
            stack::used(),
            stack::size()
        );
        embassy_time::Timer::after_secs(10).await;
    }
}
