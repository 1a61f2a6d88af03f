//! Child servers (dynalite, the function binaries, gunicorn) that never
//! outlive the program that started them.
//!
//! `kill_on_drop` only helps when destructors run; a SIGTERM, a SIGKILL or
//! an aborting test skips them, and the child would keep its port and
//! memory. On Linux the kernel itself ends the child when its parent dies.

use tokio::process::Command;

/// Asks the kernel to SIGKILL the child when the thread that started it
/// (and so the program) dies, and kills it on drop as well.
pub fn die_with_parent(command: &mut Command) -> &mut Command {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: runs in the forked child before exec; prctl and getppid
        // are async-signal-safe and touch only the child's own state.
        let parent = std::process::id();
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the request took effect.
                if libc::getppid() != parent as libc::pid_t {
                    return Err(std::io::Error::other("parent exited"));
                }
                Ok(())
            });
        }
    }
    command.kill_on_drop(true)
}
