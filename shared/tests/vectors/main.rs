//! The shared crate against the reference vectors produced by Twilio's own
//! library (kept beside the checkout, in `../shared/golden`). One test
//! binary: each links the whole crate, so fewer binaries build faster.

mod signatures;
mod twiml;

/// A golden file, found at run time: cargo and nextest set
/// `CARGO_MANIFEST_DIR` for the test process, and a path compiled in would
/// name whichever checkout built this binary.
fn golden(name: &str) -> std::path::PathBuf {
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .expect("run the tests through cargo, which sets CARGO_MANIFEST_DIR");
    std::path::Path::new(&crate_dir)
        .join("../../shared/golden")
        .join(name)
}
