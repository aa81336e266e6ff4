//! The ProtoPCIem device process for the VM: the real model
//! (`protopciem::ProtoPciem`) served over `/dev/pciem` by this crate's
//! stand-in host ([`pciem_vmtest::rawhost`]) until `protopciem --backend
//! chardev` takes its place. Prints `READY` once the card is on the bus,
//! then handles events until it is killed.

use std::io::Write;
use std::time::{Duration, Instant};

use protopciem::ProtoPciem;

fn main() {
    let mut served = match pciem_vmtest::rawhost::serve(ProtoPciem::new()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("FAIL: protopciem device: {e}");
            std::process::exit(1);
        }
    };
    println!("READY");
    let _ = std::io::stdout().flush();
    // After an event, keep polling the ring for a moment before sleeping
    // on the eventfd again: a driver usually writes its next command soon,
    // and a wake-up from sleep costs far more than the spin (under TCG a
    // sleeping vCPU can take a timer tick to notice the eventfd).
    let spin = Duration::from_millis(2);
    loop {
        if served.step(Duration::from_millis(500)) == 0 {
            continue;
        }
        let mut last = Instant::now();
        while last.elapsed() < spin {
            if served.drain() > 0 {
                last = Instant::now();
            } else {
                std::thread::yield_now();
            }
        }
    }
}
