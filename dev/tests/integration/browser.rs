//! The agent console in a real browser: Debian's Chromium driven by
//! playwright-core (dev/browser/console.test.mjs) against the local stack
//! (development server + Twilio simulator + dynalite), through the node
//! test runner. Needs `npm ci --prefix dev` and /usr/bin/chromium (or
//! CHROMIUM=...); `.ci/run` installs both.

use std::path::Path;
use std::process::Command;

#[test]
fn console_drives_a_warm_transfer_in_chromium() {
    let dev = warm_transfer_dev::paths::dev();
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    let output = Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg(dev.join("browser"))
        .env(
            "WARM_TRANSFER_LOCAL",
            env!("CARGO_BIN_EXE_warm-transfer-local"),
        )
        .env("SCREENSHOT_DIR", &screenshots)
        // Alice starts and transfers calls test after test, faster than a
        // person: above the default per-minute allowance.
        .env("AGENT_DIALS_PER_MINUTE", "100")
        .env("NODE_PATH", dev.join("node_modules"))
        .current_dir(dev)
        .output()
        .expect("node is installed");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        // The local server's log around the failure (the console's side is
        // in the report): its last lines, with the frames it posted.
        let log = std::fs::read_to_string(screenshots.join("local-server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(400)..].join("\n");
        panic!(
            "browser tests failed:\n{report}\n--- local server log (last 400 lines) ---\n{tail}"
        );
    }
    assert!(
        report.contains("pass 14") || report.contains("ℹ pass 14"),
        "{report}"
    );
    assert!(screenshots.join("console-mid-transfer.png").exists());
    assert!(screenshots.join("console-not-your-call.png").exists());
    assert!(screenshots.join("console-push-down.png").exists());
    assert!(screenshots.join("console-picker.png").exists());
    assert!(screenshots.join("console-supervisor.png").exists());
    assert!(screenshots.join("console-incoming.png").exists());
}
