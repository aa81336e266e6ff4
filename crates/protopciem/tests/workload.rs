//! The whole driver workload on the mock host, in every combination of
//! where the model runs (stepping, own thread) and how BAR0 is served
//! (trap, watch): same results, no errors, no lost events.

use protopciem::config::Mode;
use protopciem::demo;
use protopciem::mock::MockBus;

#[test]
fn the_workload_passes_in_every_mode() {
    let mut frames = Vec::new();
    for mode in [Mode::Trap, Mode::Watch] {
        for threaded in [false, true] {
            let what = format!("{mode:?}, threaded: {threaded}");
            let mut bus = if threaded {
                MockBus::threaded_with(mode)
            } else {
                MockBus::stepping_with(mode)
            }
            .unwrap();
            let summary = demo::run(&mut bus).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(bus.harness().events_lost(), 0, "{what}");
            assert!(bus.harness().device_errors().is_empty(), "{what}");
            assert_eq!(bus.harness().read_timeouts(), 0, "{what}");
            let stats = bus.into_stats().unwrap();
            assert_eq!((stats.commands, stats.errors), (20, 0), "{what}");
            frames.push(summary.frame);
        }
    }
    assert!(
        frames.windows(2).all(|w| w[0] == w[1]),
        "same frame in every mode"
    );
}
