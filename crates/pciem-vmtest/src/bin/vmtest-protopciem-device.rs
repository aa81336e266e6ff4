//! The ProtoPCIem device process for the VM: the real model
//! (`protopciem::ProtoPciem`) served over `/dev/pciem` by this crate's
//! stand-in host ([`pciem_vmtest::rawhost`]) until `protopciem --backend
//! chardev` takes its place. Prints `READY` once the card is on the bus,
//! then handles events until it is killed.

use std::io::Write;
use std::time::Duration;

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
    loop {
        served.step(Duration::from_millis(500));
    }
}
