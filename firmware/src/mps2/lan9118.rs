//! An `embassy_net_driver::Driver` for the SMSC LAN9118 in PIO mode, as QEMU emulates it
//! (`hw/net/lan9118.c`) on `mps2-an386`.
//!
//! Frames move through the controller's FIFOs one 32-bit word at a time. What QEMU's model
//! needs, unlike the datasheet's chip:
//! - its interrupt line is asserted from reset until `IRQ_CFG` selects an active-high,
//!   push-pull line, so that is configured before the NVIC enables it;
//! - the receive interrupt (RSFL) is raised only when a frame arrives, so after clearing it
//!   the driver decides from `RX_FIFO_INF` whether frames wait;
//! - `RX_DP_CTRL`'s fast-forward corrupts the FIFO: a frame is discarded by reading it;
//! - transmit end alignment must be 0, and frames are sent as written (no padding added).

use core::ptr::{read_volatile, write_volatile};
use core::task::Context;
use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

const BASE: usize = 0x4020_0000;

// Registers (byte offsets).
const RX_DATA_FIFO: usize = 0x00;
const TX_DATA_FIFO: usize = 0x20;
const RX_STATUS_FIFO: usize = 0x40;
const TX_STATUS_FIFO: usize = 0x48;
const IRQ_CFG: usize = 0x54;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5c;
const BYTE_TEST: usize = 0x64;
const FIFO_INT: usize = 0x68;
const RX_CFG: usize = 0x6c;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_FIFO_INF: usize = 0x7c;
const TX_FIFO_INF: usize = 0x80;
const MAC_CSR_CMD: usize = 0xa4;
const MAC_CSR_DATA: usize = 0xa8;

const BYTE_TEST_VALUE: u32 = 0x8765_4321;
const HW_CFG_SRST: u32 = 1 << 0;
/// IRQ_EN | IRQ_POL (active high) | IRQ_TYPE (push-pull).
const IRQ_CFG_ENABLE: u32 = (1 << 8) | (1 << 4) | (1 << 0);
/// RX status FIFO level interrupt: a frame arrived.
const INT_RSFL: u32 = 1 << 3;
const TX_CFG_TX_ON: u32 = 1 << 1;
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;

// MAC control and status registers, reached through MAC_CSR_CMD / MAC_CSR_DATA.
const CSR_BUSY: u32 = 1 << 31;
const CSR_READ: u32 = 1 << 30;
const MAC_CR: u32 = 1;
const ADDRH: u32 = 2;
const ADDRL: u32 = 3;
const MII_ACC: u32 = 6;
const MII_DATA: u32 = 7;
/// RXEN | TXEN | full duplex; PRMS (promiscuous, set at reset) cleared so that only our
/// unicast address and broadcast (ARP) arrive.
const MAC_CR_VALUE: u32 = (1 << 2) | (1 << 3) | (1 << 20);

// The internal PHY, reached through MII_ACC / MII_DATA.
const PHY_ADDR: u32 = 1;
const PHY_BMSR: u32 = 1;
const BMSR_LINK_UP: u32 = 1 << 2;

/// The largest Ethernet frame without its checksum; the RX status length includes the
/// 4-byte FCS.
const MTU: usize = 1514;
const FCS: usize = 4;
const BUF: usize = 1536;

static RX_WAKER: AtomicWaker = AtomicWaker::new();

/// Why the controller could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// `BYTE_TEST` did not read back its fixed pattern: no LAN9118 at this address.
    NotFound(u32),
}

/// A frame buffer each way.
pub struct Buffers {
    rx: [u8; BUF],
    tx: [u8; BUF],
}

impl Buffers {
    /// Empty buffers (put them in a static: they are 3 KiB).
    pub const fn new() -> Self {
        Buffers {
            rx: [0; BUF],
            tx: [0; BUF],
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Self::new()
    }
}

/// How long a PHY reading of the link stands: embassy-net asks on every poll, and each
/// reading is several MII register accesses.
const LINK_CHECK: embassy_time::Duration = embassy_time::Duration::from_secs(1);

/// The controller and its frame buffers.
pub struct Lan9118 {
    mac: [u8; 6],
    rx: &'static mut [u8; BUF],
    tx: &'static mut [u8; BUF],
    /// Frames dropped because they were longer than an Ethernet frame.
    oversized: u32,
    /// The last PHY reading of the link, and when it was taken.
    link: Option<(LinkState, embassy_time::Instant)>,
}

fn read(offset: usize) -> u32 {
    // SAFETY: a LAN9118 register on AN386, read with the 32-bit access it requires.
    unsafe { read_volatile((BASE + offset) as *const u32) }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`.
    unsafe { write_volatile((BASE + offset) as *mut u32, value) }
}

fn mac_read(index: u32) -> u32 {
    write(MAC_CSR_CMD, CSR_BUSY | CSR_READ | index);
    while read(MAC_CSR_CMD) & CSR_BUSY != 0 {}
    read(MAC_CSR_DATA)
}

fn mac_write(index: u32, value: u32) {
    write(MAC_CSR_DATA, value);
    write(MAC_CSR_CMD, CSR_BUSY | index);
    while read(MAC_CSR_CMD) & CSR_BUSY != 0 {}
}

fn phy_read(reg: u32) -> u32 {
    mac_write(MII_ACC, (PHY_ADDR << 11) | (reg << 6) | 1);
    while mac_read(MII_ACC) & 1 != 0 {}
    mac_read(MII_DATA)
}

impl Lan9118 {
    /// Resets the controller and starts receiving and transmitting, with the MAC address
    /// it loaded from its EEPROM (QEMU's `-nic ...,mac=`). Call [`super::enable_ethernet_irq`]
    /// afterwards.
    pub fn new(buffers: &'static mut Buffers) -> Result<Self, InitError> {
        let test = read(BYTE_TEST);
        if test != BYTE_TEST_VALUE {
            return Err(InitError::NotFound(test));
        }
        write(HW_CFG, HW_CFG_SRST);
        while read(HW_CFG) & HW_CFG_SRST != 0 {}
        write(IRQ_CFG, IRQ_CFG_ENABLE);
        write(INT_EN, 0);
        write(INT_STS, u32::MAX);
        let low = mac_read(ADDRL).to_le_bytes();
        let high = mac_read(ADDRH).to_le_bytes();
        let mac = [low[0], low[1], low[2], low[3], high[0], high[1]];
        // Interrupt on every received frame (RX status level 0); no RX offset or padding.
        write(FIFO_INT, 0x4800_0000);
        write(RX_CFG, 0);
        write(TX_CFG, TX_CFG_TX_ON);
        mac_write(MAC_CR, MAC_CR_VALUE);
        write(INT_EN, INT_RSFL);
        Ok(Lan9118 {
            mac,
            rx: &mut buffers.rx,
            tx: &mut buffers.tx,
            oversized: 0,
            link: None,
        })
    }

    /// The controller's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Reads the next received frame into `self.rx`: its length, or `None` if none waits.
    fn next_frame(&mut self) -> Option<usize> {
        loop {
            if (read(RX_FIFO_INF) >> 16) & 0xff == 0 {
                return None;
            }
            let status = read(RX_STATUS_FIFO);
            let len = ((status >> 16) & 0x3fff) as usize;
            let words = len.div_ceil(4);
            if len < FCS || len - FCS > MTU {
                // Read it all: the FIFO cannot skip a frame reliably.
                for _ in 0..words {
                    let _ = read(RX_DATA_FIFO);
                }
                self.oversized += 1;
                crate::log!(
                    "lan9118: dropped a {len}-byte frame (over {MTU} bytes and the FCS); {} so far",
                    self.oversized
                );
                continue;
            }
            for chunk in self.rx[..words * 4].chunks_exact_mut(4) {
                chunk.copy_from_slice(&read(RX_DATA_FIFO).to_le_bytes());
            }
            return Some(len - FCS);
        }
    }
}

/// The Ethernet interrupt: clear the "frame arrived" status and wake the receiver, which
/// drains every waiting frame.
pub(super) extern "C" fn on_interrupt() {
    write(INT_STS, INT_RSFL);
    RX_WAKER.wake();
}

/// A received frame.
pub struct RxToken<'a> {
    frame: &'a mut [u8],
}

/// Room for one frame to send.
pub struct TxToken<'a> {
    buf: &'a mut [u8; BUF],
}

impl embassy_net_driver::Driver for Lan9118 {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(RxToken<'_>, TxToken<'_>)> {
        RX_WAKER.register(cx.waker());
        let len = self.next_frame()?;
        Some((
            RxToken {
                frame: &mut self.rx[..len],
            },
            TxToken { buf: self.tx },
        ))
    }

    fn transmit(&mut self, _cx: &mut Context<'_>) -> Option<TxToken<'_>> {
        // QEMU sends a frame as soon as its last word is written: there is always room.
        Some(TxToken { buf: self.tx })
    }

    fn link_state(&mut self, _cx: &mut Context<'_>) -> LinkState {
        let now = embassy_time::Instant::now();
        match self.link {
            Some((state, at)) if now - at < LINK_CHECK => state,
            _ => {
                let state = if phy_read(PHY_BMSR) & BMSR_LINK_UP != 0 {
                    LinkState::Up
                } else {
                    LinkState::Down
                };
                self.link = Some((state, now));
                state
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

impl embassy_net_driver::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

impl embassy_net_driver::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(MTU);
        let result = f(&mut self.buf[..len]);
        write(TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | len as u32);
        write(TX_DATA_FIFO, len as u32);
        for chunk in self.buf[..len.div_ceil(4) * 4].chunks_exact(4) {
            write(
                TX_DATA_FIFO,
                u32::from_le_bytes(chunk.try_into().expect("4 bytes")),
            );
        }
        // One status per frame; nothing reads them, so drop them before the FIFO fills.
        while (read(TX_FIFO_INF) >> 16) & 0xff != 0 {
            let _ = read(TX_STATUS_FIFO);
        }
        result
    }
}
