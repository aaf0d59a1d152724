//! How much stack the firmware has used: the free stack is painted with a pattern at boot,
//! and the deepest word no longer holding it is the high-water mark. With the tasks' state
//! in statics, this and the linker's `.bss` are the whole RAM footprint.

use core::ptr::{read_volatile, write_volatile};

const PAINT: u32 = 0x5a5a_5a5a;

unsafe extern "C" {
    /// The lowest address the stack may reach (cortex-m-rt: the end of `.uninit`).
    static _stack_end: u32;
    /// Where the stack starts, growing down (cortex-m-rt: the end of RAM).
    static _stack_start: u32;
}

fn bounds() -> (usize, usize) {
    (
        &raw const _stack_end as usize,
        &raw const _stack_start as usize,
    )
}

/// Paints the stack below the current frame. Call first in `main`.
pub fn paint() {
    let (bottom, _) = bounds();
    // Leave the words near the stack pointer alone: this function's own frame is there.
    let limit = cortex_m::register::msp::read() as usize - 64;
    for word in (bottom..limit).step_by(4) {
        // SAFETY: between the end of `.uninit` and below the live stack: unused memory.
        unsafe { write_volatile(word as *mut u32, PAINT) };
    }
}

/// The stack's size in bytes.
pub fn size() -> usize {
    let (bottom, top) = bounds();
    top - bottom
}

/// The most stack used since [`paint`], in bytes.
pub fn used() -> usize {
    let (bottom, top) = bounds();
    let untouched = (bottom..top)
        .step_by(4)
        // SAFETY: reads of the stack region, which is always mapped RAM.
        .take_while(|&word| unsafe { read_volatile(word as *const u32) } == PAINT)
        .count();
    size() - 4 * untouched
}
