//! A polled driver for the Arm CMSDK APB UART (UART0 of the MPS2 boards), behind `embedded-io`.
//!
//! Registers (Cortex-M System Design Kit TRM, DDI0479): DATA at +0x00, STATE at +0x04 (bit 0
//! TX buffer full, bit 1 RX buffer full), CTRL at +0x08 (bit 0 TX enable, bit 1 RX enable),
//! BAUDDIV at +0x10 (at least 16).

use core::convert::Infallible;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;
const TX_FULL: u32 = 1 << 0;
const RX_FULL: u32 = 1 << 1;

/// UART0 of the MPS2 AN385/AN386 FPGA images (QEMU `hw/arm/mps2.c` maps the CMSDK APB UARTs
/// at 0x4000_4000, 0x4000_5000, ...).
pub const UART0: usize = 0x4000_4000;

/// One CMSDK APB UART, polled.
pub struct CmsdkUart {
    base: usize,
}

impl CmsdkUart {
    /// Enable TX and RX of the UART at `base` (one of the MPS2 UART addresses).
    pub fn new(base: usize) -> Self {
        let u = CmsdkUart { base };
        // 25 MHz / 115200 baud; QEMU ignores the rate but requires a divider of at least 16.
        u.write_reg(BAUDDIV, 217);
        u.write_reg(CTRL, 0b11);
        u
    }

    fn read_reg(&self, off: usize) -> u32 {
        #[allow(unsafe_code)]
        // SAFETY: `base + off` is a 4-byte-aligned register of the UART block, which is
        // memory-mapped I/O on this machine; no Rust object lives there, and a volatile read of
        // these registers has no side effect beyond the device's own (popping the RX byte).
        unsafe {
            core::ptr::read_volatile((self.base + off) as *const u32)
        }
    }

    fn write_reg(&self, off: usize, v: u32) {
        #[allow(unsafe_code)]
        // SAFETY: as in `read_reg`; writing DATA/CTRL/BAUDDIV only affects the UART.
        unsafe {
            core::ptr::write_volatile((self.base + off) as *mut u32, v)
        }
    }
}

impl embedded_io::ErrorType for CmsdkUart {
    type Error = Infallible;
}

impl embedded_io::Read for CmsdkUart {
    /// Blocks until at least one byte arrived, then returns what is there.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.read_reg(STATE) & RX_FULL == 0 {}
        let mut n = 0;
        while n < buf.len() && self.read_reg(STATE) & RX_FULL != 0 {
            buf[n] = self.read_reg(DATA) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl embedded_io::Write for CmsdkUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for b in buf {
            while self.read_reg(STATE) & TX_FULL != 0 {}
            self.write_reg(DATA, u32::from(*b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        while self.read_reg(STATE) & TX_FULL != 0 {}
        Ok(())
    }
}
