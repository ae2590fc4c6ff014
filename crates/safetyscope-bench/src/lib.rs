//! Criterion benchmarks of the hand-written statistics of
//! `safetyscope-core` live in `benches/`; run them with `make bench` or
//! `cargo bench -p safetyscope-bench`. This library is empty.
