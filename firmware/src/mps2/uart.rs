//! CMSDK APB UART0, the console QEMU shows on stdio with `-nographic`.

use core::ptr::{read_volatile, write_volatile};

const BASE: usize = 0x4000_4000;
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;
const STATE_TX_FULL: u32 = 1 << 0;
const CTRL_TX_ENABLE: u32 = 1 << 0;

fn reg(offset: usize) -> *mut u32 {
    (BASE + offset) as *mut u32
}

/// Enables the transmitter at 115200 baud (QEMU only checks that the divisor is >= 16).
pub fn init() {
    // SAFETY: UART0's registers on AN386; nothing else drives them.
    unsafe {
        write_volatile(reg(BAUDDIV), super::CORE_HZ / 115_200);
        write_volatile(reg(CTRL), CTRL_TX_ENABLE);
    }
}

/// Writes bytes, waiting while the one-byte transmit buffer is full.
pub fn write(bytes: &[u8]) {
    for &b in bytes {
        // SAFETY: as in `init`.
        unsafe {
            while read_volatile(reg(STATE)) & STATE_TX_FULL != 0 {}
            write_volatile(reg(DATA), u32::from(b));
        }
    }
}
