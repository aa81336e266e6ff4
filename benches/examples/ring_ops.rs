//! Single-threaded push+pop loop for instruction counting under
//! `valgrind --tool=callgrind`: `ring_ops pciem|rtrb|pciem-batch|rtrb-batch N`
//! (the batch modes move N events in batches of 64). Run it with two
//! values of N and divide the difference in instructions by the
//! difference in N to get instructions per push+pop, free of start-up.

use pciem_abi::pciem_event;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mut event = pciem_event::default();
    let mut sum = 0u64;
    match which.as_str() {
        "pciem" => {
            let (mut tx, mut rx) = pciem_core::ring::channel();
            for i in 0..n {
                event.data = i;
                let _ = tx.try_push(&event);
                sum = sum.wrapping_add(rx.pop().map_or(0, |e| e.data));
            }
        }
        "rtrb" => {
            let (mut tx, mut rx) = rtrb::RingBuffer::<pciem_event>::new(1024);
            for i in 0..n {
                event.data = i;
                let _ = tx.push(event);
                sum = sum.wrapping_add(rx.pop().map_or(0, |e| e.data));
            }
        }
        "pciem-batch" => {
            let (mut tx, mut rx) = pciem_core::ring::channel();
            let batch = [event; 64];
            let mut out = [event; 64];
            for _ in 0..n / 64 {
                let _ = tx.try_push_batch(&batch);
                let got = rx.pop_batch(&mut out);
                sum = sum.wrapping_add(got as u64);
            }
        }
        "rtrb-batch" => {
            let (mut tx, mut rx) = rtrb::RingBuffer::<pciem_event>::new(1024);
            let mut out = [event; 64];
            for _ in 0..n / 64 {
                if let Ok(chunk) = tx.write_chunk_uninit(64) {
                    chunk.fill_from_iter(std::iter::repeat_n(event, 64));
                }
                if let Ok(chunk) = rx.read_chunk(64) {
                    sum =
                        sum.wrapping_add(
                            out.iter_mut().zip(chunk).map(|(o, e)| *o = e).count() as u64
                        );
                }
            }
        }
        other => {
            eprintln!("usage: ring_ops pciem|rtrb|pciem-batch|rtrb-batch N (got {other:?})");
            std::process::exit(2);
        }
    }
    println!("{sum}");
}
