//! `protopciem`: placeholder until the mock backend lands.
fn main() {}
