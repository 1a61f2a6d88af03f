//! CPU time and CPU placement for the benchmarks: what a process, a process
//! tree, some threads or one thread have spent, and pinning this process to
//! chosen cores (so a load generator and a server do not share one).

use std::time::Duration;

/// CPU time of this process so far (user + system).
pub fn process() -> Duration {
    // SAFETY: a zeroed rusage is a valid value; getrusage only writes it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// CPU time of the calling thread so far.
pub fn this_thread() -> Duration {
    // SAFETY: a zeroed timespec is valid; clock_gettime only writes it.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(now.tv_sec.max(0) as u64) + Duration::from_nanos(now.tv_nsec.max(0) as u64)
}

fn ticks() -> f64 {
    // SAFETY: sysconf reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Fields of a `/proc/.../stat` line after the command name (which may
/// hold spaces): the state is field 0, the parent 1, utime 11, stime 12.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    Some(stat.rsplit_once(')')?.1.split_whitespace().collect())
}

fn stat_cpu(stat: &str) -> Option<Duration> {
    let fields = stat_fields(stat)?;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) / ticks()))
}

/// CPU time of another process (its threads together).
pub fn pid(pid: u32) -> Option<Duration> {
    stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU time of a process and its children (gunicorn's master and workers).
pub fn tree(root: u32) -> Duration {
    let mut total = pid(root).unwrap_or_default();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return total;
    };
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let parent = stat_fields(&stat).and_then(|f| f.get(1).and_then(|p| p.parse::<u32>().ok()));
        if parent == Some(root) {
            total += stat_cpu(&stat).unwrap_or_default();
        }
    }
    total
}

/// CPU time of this process's threads of this name.
pub fn threads(name: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name)
        })
        .filter_map(|task| stat_cpu(&std::fs::read_to_string(task.path().join("stat")).ok()?))
        .sum()
}

/// Pins every thread of this process to these cores (none: all of them).
pub fn pin_self(cores: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let all: Vec<usize> = (0..std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(online()))
        .collect();
    for &core in if cores.is_empty() { &all } else { cores } {
        // SAFETY: CPU_SET on a valid set, core below CPU_SETSIZE.
        unsafe { libc::CPU_SET(core, &mut set) };
    }
    for task in std::fs::read_dir("/proc/self/task")?.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: a thread id of this process and a valid set.
        let done =
            unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if done != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Cores the machine has online (not only those this process may use).
pub fn online() -> usize {
    // SAFETY: sysconf reads a constant.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_times_from_a_stat_line_whose_name_has_spaces() {
        let line = "42 (tokio runtime) S 1 42 42 0 -1 4194560 10 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(stat_fields(line).unwrap()[1], "1");
        assert_eq!(
            stat_cpu(line),
            Some(Duration::from_secs_f64(300.0 / ticks()))
        );
        assert!(process() > Duration::ZERO);
    }
}
