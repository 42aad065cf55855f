//! Drive a device over TCP (QEMU's `-serial tcp:...,server=on`) through the scripted session,
//! then shut it down. Used by `firmware/ci.sh`.
//!
//! ```text
//! cargo run -p aqm-firmware --features std --example qemu_session -- 127.0.0.1:4321
//! ```

use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aqm_firmware::Client;
use aqm_firmware::host::{StdIo, run_session};

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:4321".into());
    let mut stream = None;
    for _ in 0..100 {
        match TcpStream::connect(&addr) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let Some(stream) = stream else {
        eprintln!("no device listening on {addr}: start QEMU with -serial tcp:{addr},server=on first");
        std::process::exit(2);
    };
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout is positive");
    let mut client = Client::new(StdIo(stream));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1_700_000_000);
    let result = run_session(&mut client, now, &mut rand::rng(), &mut |line| println!("session: {line}"))
        .and_then(|()| client.shutdown(now));
    match result {
        Ok(()) => println!("session: passed; device shut down"),
        Err(e) => {
            eprintln!("session failed: {e}");
            std::process::exit(1);
        }
    }
}
