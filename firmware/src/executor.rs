//! A thread-mode executor that sleeps with WFI.
//!
//! embassy's stock Cortex-M executor sleeps with WFE, which QEMU treats as a no-op: an idle
//! peer would spin a host core. WFI is entered with interrupts masked, so an interrupt
//! that wakes a task between the check and the sleep still ends the sleep (a pending
//! interrupt wakes WFI even while PRIMASK masks it) and runs as soon as they are unmasked.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, Ordering};
use embassy_executor::{Spawner, raw};

/// Set when a task was woken since the executor last polled.
static WOKEN: AtomicBool = AtomicBool::new(false);

#[unsafe(export_name = "__pender")]
fn pender(_context: *mut ()) {
    WOKEN.store(true, Ordering::Release);
}

/// Runs tasks, and sleeps with WFI while none is ready.
pub struct Executor {
    inner: raw::Executor,
    not_send: PhantomData<*mut ()>,
}

impl Default for Executor {
    fn default() -> Self {
        Self::new()
    }
}

impl Executor {
    /// An executor with no tasks.
    pub fn new() -> Self {
        Executor {
            inner: raw::Executor::new(core::ptr::null_mut()),
            not_send: PhantomData,
        }
    }

    /// Calls `init` to spawn the first tasks, then runs them for ever.
    pub fn run(&'static mut self, init: impl FnOnce(Spawner)) -> ! {
        init(self.inner.spawner());
        loop {
            WOKEN.store(false, Ordering::Release);
            // SAFETY: polled only from this loop, on the thread that owns the executor.
            unsafe { self.inner.poll() };
            cortex_m::interrupt::free(|_| {
                if !WOKEN.load(Ordering::Acquire) {
                    cortex_m::asm::wfi();
                }
            });
        }
    }
}
