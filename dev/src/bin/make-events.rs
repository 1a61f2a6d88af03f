//! Rewrites `events/*.json` (run from anywhere in the workspace).

use warm_transfer_core::endpoint::Endpoint;
use warm_transfer_dev::events::{event, file_name};

fn main() -> std::io::Result<()> {
    let workspace = warm_transfer_dev::paths::workspace();
    for endpoint in Endpoint::ALL {
        let path = workspace.join(file_name(endpoint));
        let text = serde_json::to_string_pretty(&event(endpoint)).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        println!("wrote {}", file_name(endpoint));
    }
    Ok(())
}
