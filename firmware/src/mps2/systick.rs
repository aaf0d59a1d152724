//! An embassy time driver on SysTick: a 1 kHz interrupt counts milliseconds, the counter
//! inside the current millisecond gives microseconds, and the interrupt wakes the timers
//! that are due. Ticks are microseconds (`tick-hz-1_000_000`).

use super::CORE_HZ;
use core::cell::{Cell, RefCell};
use core::task::Waker;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

const CYCLES_PER_MS: u32 = CORE_HZ / 1_000;
const CYCLES_PER_US: u32 = CORE_HZ / 1_000_000;

struct SysTickDriver {
    /// Milliseconds since boot, counted by the interrupt.
    millis: Mutex<Cell<u64>>,
    /// When the earliest timer is due (ticks).
    alarm: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    millis: Mutex::new(Cell::new(0)),
    alarm: Mutex::new(Cell::new(u64::MAX)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

/// Starts the millisecond interrupt.
pub fn init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CYCLES_PER_MS - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

impl SysTickDriver {
    fn now_in(&self, cs: CriticalSection<'_>) -> u64 {
        let mut millis = self.millis.borrow(cs).get();
        let mut current = SYST::get_current();
        // The counter wrapped but the interrupt has not run yet (we are inside a critical
        // section): that millisecond is not counted, and `current` may predate the wrap.
        if SCB::is_pendst_pending() {
            millis += 1;
            current = SYST::get_current();
        }
        let elapsed = (CYCLES_PER_MS - 1 - current) / CYCLES_PER_US;
        millis * 1_000 + u64::from(elapsed)
    }

    fn on_tick(&self) {
        critical_section::with(|cs| {
            let millis = self.millis.borrow(cs);
            millis.set(millis.get() + 1);
            let now = millis.get() * 1_000;
            if now >= self.alarm.borrow(cs).get() {
                let next = self.queue.borrow_ref_mut(cs).next_expiration(now);
                self.alarm.borrow(cs).set(next);
            }
        });
    }
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now_in(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                let next = queue.next_expiration(self.now_in(cs));
                self.alarm.borrow(cs).set(next);
            }
        });
    }
}

#[exception]
fn SysTick() {
    DRIVER.on_tick();
}
