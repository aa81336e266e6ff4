//! `dmacheck::check` against a byte-by-byte reference: an access passes
//! exactly when every byte it touches lies in a live mapping whose
//! direction allows it, and a reported fault names a byte that does not.

use pciem_core::dmacheck::{check, Access, Direction, FaultKind, Mapping, SliceMappings};
use proptest::prelude::*;

struct List {
    live: Vec<Mapping>,
    gone: Vec<Mapping>,
}

impl List {
    fn view(&self) -> SliceMappings<'_> {
        SliceMappings {
            live: &self.live,
            gone: &self.gone,
        }
    }
}

fn byte_ok(l: &List, b: u64, access: Access) -> bool {
    l.live
        .iter()
        .any(|m| m.start <= b && b < m.end() && m.dir.allows(access))
}

fn dir() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::Bidirectional),
        Just(Direction::ToDevice),
        Just(Direction::FromDevice)
    ]
}

fn access() -> impl Strategy<Value = Access> {
    prop_oneof![
        Just(Access::Read),
        Just(Access::Write),
        Just(Access::Atomic)
    ]
}

fn mapping() -> impl Strategy<Value = Mapping> {
    (0u64..0x3000, 1u64..0x1800, dir()).prop_map(|(start, len, dir)| Mapping {
        start,
        len,
        dir,
        tag: start,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn matches_the_byte_reference(
        live in proptest::collection::vec(mapping(), 0..6),
        gone in proptest::collection::vec(mapping(), 0..3),
        addr in 0u64..0x4000,
        len in 1u64..0x2000,
        acc in access(),
    ) {
        let l = List { live, gone };
        let expect = (addr..addr + len).all(|b| byte_ok(&l, b, acc));
        match check(&l.view(), addr, len, acc) {
            Ok(()) => prop_assert!(expect, "passed an access with an uncovered byte"),
            Err(f) => {
                prop_assert!(!expect, "refused a covered access: {f}");
                prop_assert!(f.first_bad >= addr && f.first_bad < addr + len);
                prop_assert!(!byte_ok(&l, f.first_bad, acc), "first_bad {:#x} is covered", f.first_bad);
                // No uncovered byte before first_bad.
                prop_assert!((addr..f.first_bad).all(|b| byte_ok(&l, b, acc)));
                if let FaultKind::Outside { bytes } = f.kind {
                    prop_assert!(bytes >= 1);
                }
                prop_assert_eq!(f.culprit.is_none(), f.kind == FaultKind::Unmapped);
            }
        }
    }
}
