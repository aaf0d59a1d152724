//! The overlay peer on QEMU's `mps2-an386` (Cortex-M4F):
//!
//! ```text
//! qemu-system-arm -M mps2-an386 -nographic -semihosting-config enable=on,target=native \
//!     -nic tap,ifname=tap0,script=no,downscript=no,model=lan9118 -kernel mps2-an386
//! ```
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_net::Runner;
use overlay_firmware::executor::Executor;
use overlay_firmware::mps2::{self, lan9118, lan9118::Lan9118};
use overlay_firmware::{Storages, log, settings};
use static_cell::{ConstStaticCell, StaticCell};

#[cortex_m_rt::entry]
fn main() -> ! {
    overlay_firmware::stack::paint();
    mps2::uart::init();
    overlay_firmware::log::set_sink(mps2::uart::write);
    log!(
        "boot: overlay-firmware {} on mps2-an386",
        env!("CARGO_PKG_VERSION")
    );
    let core = cortex_m::Peripherals::take().expect("taken once, at boot");
    mps2::systick::init(core.SYST);

    static FRAMES: ConstStaticCell<lan9118::Buffers> =
        ConstStaticCell::new(lan9118::Buffers::new());
    let eth = match Lan9118::new(FRAMES.take()) {
        Ok(eth) => eth,
        Err(e) => {
            log!("fatal: ethernet: {e:?}");
            mps2::exit(1)
        }
    };
    mps2::enable_ethernet_irq();
    let mac = eth.mac();
    // AN386 has no random number generator: the MAC seeds the machines.
    let seed = overlay_firmware::seed_from_mac(mac);
    log!(
        "boot: mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} ip={}",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5],
        settings::network().address
    );

    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    EXECUTOR
        .init(Executor::new())
        .run(move |spawner| start(spawner, eth, seed))
}

/// Starts the network and the peers. Not inlined: its frame (the network stack's runner is
/// built here) is gone before the executor loop runs, which keeps the stack shallow.
#[inline(never)]
fn start(spawner: Spawner, eth: Lan9118, seed: u64) {
    let (stack, runner) = overlay_firmware::network(eth, seed);
    spawner.spawn(net_task(runner).expect("spawned once"));
    overlay_firmware::spawn_peers(spawner, stack, seed, Storages::in_retained_ram());
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Lan9118>) -> ! {
    runner.run().await
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    log!("fatal: {info}");
    mps2::exit(1)
}
