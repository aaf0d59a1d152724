//! The overlay peer on a NUCLEO-F767ZI (STM32F767ZI, RMII Ethernet to a LAN8742A PHY),
//! through embassy-stm32: the same tasks as on QEMU, with the chip's Ethernet MAC, its
//! random number generator for the seed, and embassy-stm32's time driver.
//!
//! Flash and run with probe-rs: `cargo run --release --no-default-features --features
//! dht,chord,nucleo-f767zi --bin nucleo-f767zi` with the runner in docs/firmware.md. The
//! console is USART3 (the ST-LINK's virtual COM port, 115200 8N1).
#![no_std]
#![no_main]

use embassy_net::Runner;
use embassy_stm32::eth::{self, Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::peripherals::{ETH, ETH_SMA, RNG};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::time::Hertz;
use embassy_stm32::usart::{self, UartTx};
use embassy_stm32::{Config, bind_interrupts, mode::Blocking};
use overlay_firmware::executor::Executor;
use overlay_firmware::{Storages, log};
use static_cell::{ConstStaticCell, StaticCell};

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    RNG => rng::InterruptHandler<RNG>;
});

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

static CONSOLE: critical_section::Mutex<core::cell::RefCell<Option<UartTx<'static, Blocking>>>> =
    critical_section::Mutex::new(core::cell::RefCell::new(None));

fn console(bytes: &[u8]) {
    critical_section::with(|cs| {
        if let Some(tx) = CONSOLE.borrow_ref_mut(cs).as_mut() {
            let _ = tx.blocking_write(bytes);
        }
    });
}

#[cortex_m_rt::entry]
fn main() -> ! {
    overlay_firmware::stack::paint();
    let mut config = Config::default();
    {
        use embassy_stm32::rcc::*;
        // The ST-LINK's 8 MHz clock output; 216 MHz core, 48 MHz for the RNG.
        config.rcc.hse = Some(Hse {
            freq: Hertz(8_000_000),
            mode: HseMode::Bypass,
        });
        config.rcc.pll_src = PllSource::HSE;
        config.rcc.pll = Some(Pll {
            prediv: PllPreDiv::DIV4,
            mul: PllMul::MUL216,
            divp: Some(PllPDiv::DIV2),
            divq: Some(PllQDiv::DIV9),
            divr: None,
        });
        config.rcc.ahb_pre = AHBPrescaler::DIV1;
        config.rcc.apb1_pre = APBPrescaler::DIV4;
        config.rcc.apb2_pre = APBPrescaler::DIV2;
        config.rcc.sys = Sysclk::PLL1_P;
        config.rcc.mux.clk48sel = mux::Clk48sel::PLL1_Q;
    }
    let p = embassy_stm32::init(config);

    let uart = UartTx::new_blocking(p.USART3, p.PD8, usart::Config::default());
    if let Ok(tx) = uart {
        critical_section::with(|cs| CONSOLE.borrow_ref_mut(cs).replace(tx));
        overlay_firmware::log::set_sink(console);
    }
    log!(
        "boot: overlay-firmware {} on nucleo-f767zi",
        env!("CARGO_PKG_VERSION")
    );

    let seed = Rng::new(p.RNG, Irqs).next_u64();
    // A locally administered MAC made from the chip's unique id.
    let uid = embassy_stm32::uid::uid();
    let mac = [0x02, uid[0], uid[1], uid[2], uid[3], uid[4]];
    static PACKETS: ConstStaticCell<PacketQueue<4, 4>> = ConstStaticCell::new(PacketQueue::new());
    let device: Device = Ethernet::new(
        PACKETS.take(),
        p.ETH,
        Irqs,
        p.PA1,  // REF_CLK
        p.PA7,  // CRS_DV
        p.PC4,  // RXD0
        p.PC5,  // RXD1
        p.PG13, // TXD0
        p.PB13, // TXD1
        p.PG11, // TX_EN
        mac,
        p.ETH_SMA,
        p.PA2, // MDIO
        p.PC1, // MDC
    );

    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    EXECUTOR.init(Executor::new()).run(|spawner| {
        let (stack, runner) = overlay_firmware::network(device, seed);
        spawner.spawn(net_task(runner).expect("spawned once"));
        overlay_firmware::spawn_peers(spawner, stack, seed, Storages::in_retained_ram());
    })
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    log!("fatal: {info}");
    cortex_m::peripheral::SCB::sys_reset()
}
