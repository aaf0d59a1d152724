//! QEMU's `mps2-an386` board (ARM's AN386 FPGA image: a Cortex-M4F at 25 MHz), with
//! everything it needs written here since no HAL covers it: the LAN9118 Ethernet
//! controller ([`lan9118`]), an embassy time driver on SysTick ([`systick`]), the CMSDK
//! UART console ([`uart`]), the interrupt vector table and semihosting exit codes.
//!
//! Memory map (AN386 and QEMU's `hw/arm/mps2.c`): code RAM at 0 (QEMU loads the ELF there),
//! data RAM at 0x2000_0000, UART0 at 0x4000_4000, the LAN9118 at 0x4020_0000 on IRQ 13.

pub mod lan9118;
pub mod systick;
pub mod uart;

use cortex_m_rt::{ExceptionFrame, exception};

/// The core clock that drives SysTick.
pub const CORE_HZ: u32 = 25_000_000;

/// External interrupts of the vector table (QEMU's AN386 NVIC has 32); only the Ethernet
/// controller's is used.
const IRQS: usize = 32;
const ETHERNET_IRQ: usize = 13;

/// One vector-table entry: a handler, or a reserved slot.
pub union Vector {
    handler: unsafe extern "C" fn(),
    reserved: usize,
}

unsafe extern "C" {
    fn DefaultHandler();
}

#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [Vector; IRQS] = {
    let mut table = [const { Vector { reserved: 0 } }; IRQS];
    let mut i = 0;
    while i < IRQS {
        table[i] = Vector {
            handler: DefaultHandler,
        };
        i += 1;
    }
    table[ETHERNET_IRQ] = Vector {
        handler: lan9118::on_interrupt,
    };
    table
};

/// Enables the Ethernet interrupt in the NVIC, clearing what was latched before the
/// controller's line was configured.
pub fn enable_ethernet_irq() {
    #[derive(Clone, Copy)]
    struct Irq;
    // SAFETY: 13 is the Ethernet controller's line on AN386.
    unsafe impl cortex_m::interrupt::InterruptNumber for Irq {
        fn number(self) -> u16 {
            ETHERNET_IRQ as u16
        }
    }
    cortex_m::peripheral::NVIC::unpend(Irq);
    // SAFETY: the handler only touches the controller's interrupt status and a waker.
    unsafe { cortex_m::peripheral::NVIC::unmask(Irq) };
}

/// Ends the QEMU run with `code` (semihosting `SYS_EXIT_EXTENDED`; QEMU needs
/// `-semihosting-config enable=on,target=native`). On hardware with no debugger attached
/// this would fault, so it is only called on the way out.
pub fn exit(code: i32) -> ! {
    cortex_m_semihosting::debug::exit(if code == 0 {
        cortex_m_semihosting::debug::EXIT_SUCCESS
    } else {
        cortex_m_semihosting::debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    crate::log!("fatal: hard fault at pc={:#010x}", frame.pc());
    exit(1)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    crate::log!("fatal: unexpected exception {irqn}");
    exit(1)
}
