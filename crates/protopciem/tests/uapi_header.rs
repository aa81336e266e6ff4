//! The committed C header of the driver ABI must be exactly what
//! `protopciem::uapi::c_header()` renders. Regenerate it with
//! `PROTOPCIEM_BLESS=1 cargo test -p protopciem --test uapi_header`.

use std::path::PathBuf;

use protopciem::uapi::{c_header, C_HEADER_PATH};

#[test]
fn committed_header_matches_the_rust_definition() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(C_HEADER_PATH);
    let fresh = c_header();
    if std::env::var_os("PROTOPCIEM_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write the header");
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(
        committed == fresh,
        "{C_HEADER_PATH} is stale; run `PROTOPCIEM_BLESS=1 cargo test -p protopciem --test uapi_header`"
    );
}
