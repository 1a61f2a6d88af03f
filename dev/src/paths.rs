//! Files the tools and tests read at run time, found at run time.
//!
//! A path compiled in with `env!("CARGO_MANIFEST_DIR")` names the checkout
//! that built the binary; with a shared `CARGO_TARGET_DIR` cargo may reuse
//! that binary from another checkout, which then reads the wrong files. So
//! the checkout is looked up when the program runs instead.

use std::path::{Path, PathBuf};

/// The workspace root of the checkout being worked in. `cargo run`, `cargo
/// test` and nextest set `CARGO_MANIFEST_DIR` for the process (the `dev`
/// or `shared` crate, one level below the root); run on its own, the
/// program looks upwards from the current directory.
pub fn workspace() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    start
        .ancestors()
        .find(|dir| is_workspace_root(dir))
        .map(Path::to_path_buf)
        .unwrap_or(start)
}

fn is_workspace_root(dir: &Path) -> bool {
    dir.join("template.yaml").is_file() && dir.join("Cargo.toml").is_file()
}

/// The reference material kept beside the checkout (`../shared`): Twilio's
/// OpenAPI description and the golden vectors from Twilio's own library.
pub fn reference() -> PathBuf {
    workspace().join("..").join("shared")
}

/// Twilio's OpenAPI description of the 2010-04-01 API.
pub fn twilio_openapi() -> PathBuf {
    reference().join("twilio").join("twilio_api_v2010.json")
}

/// The `dev` crate's own directory (its Node.js tools and fixtures).
pub fn dev() -> PathBuf {
    workspace().join("dev")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_found_from_the_crate_directory() {
        let root = workspace();
        assert!(root.join("template.yaml").is_file(), "{}", root.display());
        assert!(root.join("dev").join("Cargo.toml").is_file());
    }
}
