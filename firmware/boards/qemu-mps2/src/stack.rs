//! Stack high-water marks: the free RAM between the end of `.bss` and the stack pointer is
//! painted with a pattern; after a command, the lowest word that no longer holds the pattern
//! shows how deep the stack went. Repainting after each measurement makes every figure the peak
//! of one command alone.

const PAINT: u32 = 0xA5C3_5A3C;
/// Bytes just below the live stack pointer left alone while painting (the painter's own frame).
const MARGIN: usize = 256;

// SAFETY: both symbols are defined by cortex-m-rt's linker script; only their addresses are
// used, never their contents.
#[allow(unsafe_code)]
unsafe extern "C" {
    /// End of `.bss`/`.uninit`: the lowest address the stack may reach (cortex-m-rt).
    static _stack_end: u32;
    /// Initial stack pointer: the top of RAM (cortex-m-rt).
    static _stack_start: u32;
}

fn bounds() -> (usize, usize) {
    (core::ptr::addr_of!(_stack_end) as usize, core::ptr::addr_of!(_stack_start) as usize)
}

/// Bytes of RAM the stack may use at most (top of RAM minus end of static data).
pub fn capacity() -> usize {
    let (low, top) = bounds();
    top - low
}

/// Paint every free word below the current stack pointer.
#[inline(never)]
pub fn paint() {
    let (low, _) = bounds();
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = low;
    while p + 4 <= sp - MARGIN {
        #[allow(unsafe_code)]
        // SAFETY: `[low, sp - MARGIN)` is the unused part of the stack region: below the live
        // stack pointer (minus this function's frame) and above every static, so no Rust object
        // lives there; `p` is 4-byte aligned because `_stack_end` is (cortex-m-rt asserts it).
        unsafe {
            core::ptr::write_volatile(p as *mut u32, PAINT)
        };
        p += 4;
    }
}

/// The deepest the stack went since the last paint, in bytes from the top of RAM.
#[inline(never)]
pub fn peak() -> usize {
    let (low, top) = bounds();
    let mut p = low;
    while p < top {
        #[allow(unsafe_code)]
        // SAFETY: reading aligned words of the stack region, all of which are initialised
        // (painted or written by the stack); a volatile read has no side effect.
        let w = unsafe { core::ptr::read_volatile(p as *const u32) };
        if w != PAINT {
            break;
        }
        p += 4;
    }
    top - p
}
