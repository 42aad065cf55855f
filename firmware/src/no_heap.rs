//! The boards' global allocator, which refuses every request.
//!
//! The firmware never allocates, but `zeroize`'s default `alloc` feature (enabled by `x-wing`)
//! links the `alloc` crate, so the linker asks for a global allocator. Boards install this one:
//! an allocation anywhere would fail into the panic handler (none happens — the QEMU session in
//! CI would fail).

/// A global allocator with no heap: every allocation fails.
///
/// ```ignore
/// #[global_allocator]
/// static HEAP: aqm_firmware::NoHeap = aqm_firmware::NoHeap;
/// ```
pub struct NoHeap;

#[allow(unsafe_code)]
// SAFETY: returning null is the documented way for `GlobalAlloc::alloc` to report failure;
// `dealloc` is never called because nothing is ever allocated.
unsafe impl core::alloc::GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}
