//! This host's side of the platforms: entering a target's network namespace, finding its
//! cgroups, starting faultline's own binary attached to them, finding processes by their
//! marker, and the few process settings that need a system call between fork and exec.
//! Every `unsafe` block of faultline lives here, each with its reason.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{ExecOutput, PlatformError};

/// Seconds since the epoch at which something started now must have ended by itself.
pub fn deadline(lifetime: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + lifetime).as_secs()
}

/// Whether the epoch second `until` has passed.
pub fn past(until: u64) -> bool {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        >= until
}

/// Opens the directory `path` of a target whose root this host sees at `root`
/// (`/proc/PID/root`), resolved by the kernel as if `root` were `/` (openat2 with
/// `RESOLVE_IN_ROOT`): a symbolic link in the target, absolute or with `..`, ends inside
/// the target's root, never on this host; magic links (`/proc/self/root`) are refused.
/// The returned descriptor is what later operations are relative to, so a link swapped in
/// after the open changes nothing.
pub fn open_dir_in_root(
    root: &std::path::Path,
    path: &str,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
    let root = std::fs::File::open(root)?;
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    let how = OpenHow::new()
        .flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(&root, relative, how).map_err(|e| match e {
        nix::errno::Errno::ENOSYS => std::io::Error::other(
            "this kernel has no openat2 (Linux 5.6 and later), which faultline needs to write inside a container's root safely; use `strategy: exec`",
        ),
        e => std::io::Error::from(e),
    })
}

/// Creates the new file `name` in the directory `dir` (never an existing file, never
/// through a link), for reading and writing; `direct` asks for O_DIRECT (the writes reach the block
/// device without the page cache).
pub fn create_in(
    dir: &std::os::fd::OwnedFd,
    name: &str,
    direct: bool,
) -> std::io::Result<std::fs::File> {
    use nix::fcntl::{OFlag, openat};
    let mut flags =
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if direct {
        flags |= OFlag::O_DIRECT;
    }
    let fd = openat(
        dir,
        name,
        flags,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )?;
    Ok(std::fs::File::from(fd))
}

/// Opens the existing file `name` in the directory `dir` (never through a link) for
/// reading and writing, with O_DIRECT when `direct`.
pub fn open_in(
    dir: &std::os::fd::OwnedFd,
    name: &str,
    direct: bool,
) -> std::io::Result<std::fs::File> {
    use nix::fcntl::{OFlag, openat};
    let mut flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if direct {
        flags |= OFlag::O_DIRECT;
    }
    let fd = openat(dir, name, flags, nix::sys::stat::Mode::empty())?;
    Ok(std::fs::File::from(fd))
}

/// Removes the file `name` from the directory `dir`; a file already gone is fine.
pub fn remove_in(dir: &std::os::fd::OwnedFd, name: &str) -> std::io::Result<()> {
    match nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether host PID `pid` is a process of the container (its cgroup names the container),
/// which guards against a recycled PID and tells a local daemon from a remote one.
pub fn process_belongs_to(pid: i64, container_id: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(container_id))
}

/// Host PIDs whose command line has `marker` as one of its arguments.
pub fn pids_with_marker(marker: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == marker.as_bytes()))
        })
        .collect()
}

/// A shell program that kills every process whose command line holds `marker` and prints
/// `remaining=N`. The marker is split in the program text so that it does not match
/// itself. It runs inside a target that has only a POSIX shell and /proc.
pub fn kill_by_marker_script(marker: &str) -> String {
    let (a, b) = marker.split_at(marker.len() / 2);
    format!(
        "m1='{a}'; m2='{b}'; for round in 1 2 3; do n=0; for d in /proc/[0-9]*; do \
         c=$(cat \"$d/cmdline\" 2>/dev/null); case \"$c\" in *\"$m1$m2\"*) kill -9 \"${{d#/proc/}}\" 2>/dev/null; n=$((n + 1));; esac; done; \
         [ $n -eq 0 ] && break; sleep 0.1; done; \
         n=0; for d in /proc/[0-9]*; do c=$(cat \"$d/cmdline\" 2>/dev/null); case \"$c\" in *\"$m1$m2\"*) n=$((n + 1));; esac; done; echo \"remaining=$n\""
    )
}

/// [`kill_by_marker_script`], after a SIGTERM to each process carrying `marker` and up to
/// 3 s for them to end by themselves (a delayer lets the packets it holds go).
pub fn term_then_kill_by_marker_script(marker: &str) -> String {
    let (a, b) = marker.split_at(marker.len() / 2);
    format!(
        "m1='{a}'; m2='{b}'; for d in /proc/[0-9]*; do c=$(cat \"$d/cmdline\" 2>/dev/null); case \"$c\" in *\"$m1$m2\"*) kill -TERM \"${{d#/proc/}}\" 2>/dev/null;; esac; done; \
         i=0; while [ $i -lt 30 ]; do n=0; for d in /proc/[0-9]*; do c=$(cat \"$d/cmdline\" 2>/dev/null); case \"$c\" in *\"$m1$m2\"*) n=$((n + 1));; esac; done; \
         [ $n -eq 0 ] && break; sleep 0.1; i=$((i + 1)); done; {}",
        kill_by_marker_script(marker)
    )
}

/// What [`kill_by_marker_script`] printed: how many processes remain, if it said.
pub fn remaining(stdout: &str) -> Option<u32> {
    stdout.trim().strip_prefix("remaining=")?.parse().ok()
}

fn open_netns(pid: i64) -> Result<std::fs::File, PlatformError> {
    std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| {
        PlatformError::Refused(format!(
            "cannot open the network namespace of pid {pid}: {e}"
        ))
    })
}

/// Runs `argv` from the host inside the network namespace of process `pid`. The namespace
/// is entered in the forked child before exec, never on one of tokio's threads.
pub async fn exec_in_netns(pid: i64, argv: &[String]) -> Result<ExecOutput, PlatformError> {
    let ns = open_netns(pid)?;
    let fd = ns.as_raw_fd();
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // SAFETY: the closure runs in the forked child before exec and makes one system call
    // (setns) on a descriptor that `ns` keeps open until the spawn has returned.
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)
        });
    }
    let out = cmd.output().await.map_err(|e| {
        PlatformError::Refused(format!(
            "cannot run `{}` on this host: {e} (install it, or use `strategy: sidecar`)",
            argv[0]
        ))
    })?;
    drop(ns);
    Ok(ExecOutput {
        code: out.status.code().map(i64::from).unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The cgroup directories (every hierarchy, v1 and v2) that process `pid` is in, as seen
/// from this host's mounts.
pub fn cgroup_dirs(pid: i64) -> Result<Vec<std::path::PathBuf>, String> {
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| format!("cannot read the cgroups of pid {pid}: {e}"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    // (controllers, or none for v2) -> mount point
    let mut mounts: Vec<(Vec<String>, String)> = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split_whitespace().nth(4).unwrap_or("").to_string();
        let fields: Vec<&str> = right.split_whitespace().collect();
        match fields.first() {
            Some(&"cgroup") => {
                let opts = fields.get(2).unwrap_or(&"");
                let controllers = opts
                    .split(',')
                    .filter(|o| *o != "rw" && *o != "ro")
                    .map(str::to_string)
                    .collect();
                mounts.push((controllers, mount_point));
            }
            Some(&"cgroup2") => mounts.push((Vec::new(), mount_point)),
            _ => {}
        }
    }
    let mut dirs = Vec::new();
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let wanted: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
        let mount = mounts.iter().find(|(cs, _)| {
            if wanted.is_empty() {
                cs.is_empty()
            } else {
                wanted.iter().all(|w| cs.iter().any(|c| c == w))
            }
        });
        if let Some((_, mp)) = mount {
            let dir = std::path::Path::new(mp).join(path.trim_start_matches('/'));
            if dir.join("cgroup.procs").exists() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    if dirs.is_empty() {
        return Err(format!(
            "no cgroup of pid {pid} is visible under this host's cgroup mounts"
        ));
    }
    Ok(dirs)
}

/// Whether the cgroup directory `dir` is frozen: v1 `freezer.state`, v2 `cgroup.events`.
fn is_frozen_dir(dir: &std::path::Path) -> bool {
    if let Ok(state) = std::fs::read_to_string(dir.join("freezer.state")) {
        return state.trim() != "THAWED";
    }
    std::fs::read_to_string(dir.join("cgroup.events"))
        .is_ok_and(|e| e.lines().any(|l| l.trim() == "frozen 1"))
}

/// Moves faultline's own helper `pid` out of every frozen cgroup it is in, into the root
/// of that hierarchy, so that a signal reaches it: a frozen task cannot die until it is
/// thawed, and a task moved into a cgroup that is not frozen is thawed (v1 and v2). The
/// target's own processes are never moved. Returns whether it was moved.
pub fn unfreeze_helper(pid: i32) -> bool {
    let Ok(dirs) = cgroup_dirs(i64::from(pid)) else {
        return false;
    };
    let mut moved = false;
    for dir in dirs.iter().filter(|d| is_frozen_dir(d)) {
        // The root of the hierarchy: the highest ancestor that is still a cgroup.
        let root = dir
            .ancestors()
            .take_while(|a| a.join("cgroup.procs").exists())
            .last()
            .unwrap_or(dir);
        moved |= std::fs::write(root.join("cgroup.procs"), pid.to_string()).is_ok();
    }
    moved
}

/// The processes in the cgroup directories `dirs` (every one listed once): host PID and
/// command line, its arguments joined by spaces. Kernel threads and processes gone
/// meanwhile are left out.
pub fn processes_in(dirs: &[std::path::PathBuf]) -> Vec<(i32, String)> {
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter()
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            (!args.is_empty()).then(|| (pid, args.join(" ")))
        })
        .collect()
}

/// Starts faultline's own binary with `args` attached to the process `pid`: inside its
/// network namespace (`netns`) and/or moved into every cgroup it is in (`cgroups`; the
/// child is started stopped, moved, then continued, so nothing it does counts elsewhere).
/// The child has a parent-death signal: it never outlives faultline.
pub fn spawn_attached(
    pid: i64,
    netns: bool,
    cgroups: bool,
    args: &[String],
) -> Result<std::process::Child, PlatformError> {
    let dirs = if cgroups {
        cgroup_dirs(pid).map_err(PlatformError::Refused)?
    } else {
        Vec::new()
    };
    let ns = if netns { Some(open_netns(pid)?) } else { None };
    let ns_fd = ns.as_ref().map(AsRawFd::as_raw_fd);
    let exe = std::env::current_exe()
        .map_err(|e| PlatformError::Refused(format!("cannot find faultline's own binary: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if cgroups {
        // Read by the child: stop itself before doing anything (see `stop_self_if_asked`).
        cmd.env(STOP_FIRST, "1");
    }
    // SAFETY: the closure runs in the forked child before exec and makes only system
    // calls (setns on a descriptor `ns` keeps open until spawn returns; prctl).
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = ns_fd {
                let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
            }
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        PlatformError::Refused(format!("cannot start `faultline {}`: {e}", args[0]))
    })?;
    drop(ns);
    if !cgroups {
        return Ok(child);
    }
    let child_pid = child.id();
    let fail = |child: &mut std::process::Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        PlatformError::Refused(why)
    };
    // The child stops itself before it does anything; wait for that.
    let stopped = (0..500).any(|_| {
        let state = std::fs::read_to_string(format!("/proc/{child_pid}/stat")).unwrap_or_default();
        let stopped = state
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('T'));
        if !stopped {
            std::thread::sleep(Duration::from_millis(2));
        }
        stopped
    });
    if !stopped {
        return Err(fail(
            &mut child,
            format!("`faultline {}` did not reach its stopped start", args[0]),
        ));
    }
    for dir in &dirs {
        if let Err(e) = std::fs::write(dir.join("cgroup.procs"), child_pid.to_string()) {
            return Err(fail(
                &mut child,
                format!(
                    "cannot move `faultline {}` into {}: {e}",
                    args[0],
                    dir.display()
                ),
            ));
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child_pid as i32),
        nix::sys::signal::Signal::SIGCONT,
    )
    .map_err(|e| PlatformError::Refused(format!("cannot continue `faultline {}`: {e}", args[0])))?;
    Ok(child)
}

/// Set for a child that must stop itself at once, so that it can be moved into a
/// target's cgroups before it does any work.
const STOP_FIRST: &str = "FAULTLINE_STOP_FIRST";

/// Called first by the hidden subcommands that [`spawn_attached`] starts.
pub fn stop_self_if_asked() {
    if std::env::var_os(STOP_FIRST).is_some() {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
    }
}

/// Starts `cmd` in a session of its own: a Ctrl-C or a kill of faultline's process group
/// does not reach it (the dead-man's switch).
pub fn spawn_in_own_session(
    cmd: &mut std::process::Command,
) -> std::io::Result<std::process::Child> {
    // SAFETY: the closure runs in the forked child before exec and makes one system call.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    cmd.spawn()
}

/// Starts `cmd` so that it gets SIGTERM when faultline ends (a forwarding `ssh`): it never
/// outlives the process that uses it.
pub fn spawn_dying_with_parent(
    cmd: &mut std::process::Command,
) -> std::io::Result<std::process::Child> {
    // SAFETY: the closure runs in the forked child before exec and makes one system call.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
    cmd.spawn()
}

/// Sets `flag` when SIGTERM arrives (a delayer asked to stop lets its packets go).
pub fn flag_on_sigterm(flag: &'static std::sync::atomic::AtomicBool) -> std::io::Result<()> {
    static FLAG: std::sync::OnceLock<&'static std::sync::atomic::AtomicBool> =
        std::sync::OnceLock::new();
    extern "C" fn on_term(_: i32) {
        if let Some(f) = FLAG.get() {
            f.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let _ = FLAG.set(flag);
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_term),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only loads a set OnceLock and stores to an atomic, both
    // async-signal-safe.
    unsafe {
        sigaction(Signal::SIGTERM, &action).map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// The descriptors this process has open now.
pub fn open_fds() -> Vec<std::os::fd::RawFd> {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `fd` is readable or `timeout` passes (a signal ends the wait early).
/// Returns whether it is readable.
pub fn wait_readable(fd: std::os::fd::RawFd, timeout: Duration) -> std::io::Result<bool> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // SAFETY: the caller owns `fd` (a socket it keeps open for its whole use), and the
    // borrow does not outlive this call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(borrowed, PollFlags::POLLIN)];
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    match poll(&mut fds, PollTimeout::from(ms)) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The user id of the process listening on the unix socket at `path` (`SO_PEERCRED`):
/// whether a daemon on this host runs as root, without asking it.
pub fn unix_peer_uid(path: &std::path::Path) -> std::io::Result<u32> {
    let stream = std::os::unix::net::UnixStream::connect(path)?;
    let cred = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)?;
    Ok(cred.uid())
}

/// Blocks until process `pid` has ended. With a pidfd (Linux 5.3+) the wait ends the
/// moment it exits and cannot be fooled by a recycled pid; without one, `alive` is asked
/// every 100 ms.
pub fn wait_for_exit(pid: u32, alive: impl Fn(u32) -> bool) {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no
    // memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, raw, 0) };
    if let Ok(fd) = std::os::fd::RawFd::try_from(fd)
        && fd >= 0
    {
        // SAFETY: the descriptor was just returned by pidfd_open and nothing else owns it.
        let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // A pidfd becomes readable when the process exits.
        loop {
            match wait_readable(owned.as_raw_fd(), Duration::from_secs(60)) {
                Ok(true) => return,
                Ok(false) => {}
                Err(_) => break,
            }
        }
    }
    while alive(pid) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The records of this host's kernel log (`/dev/kmsg`, readable by root) with a sequence
/// number above `after` (all of them with `None`): `(sequence, message)`.
pub fn kernel_log(after: Option<u64>) -> std::io::Result<Vec<(u64, String)>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open("/dev/kmsg")?;
    let mut records = Vec::new();
    // One record per read; a record is at most 8 KiB.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                // `prio,seq,usec,flags[,...];message\n` then continuation lines.
                let Some((head, message)) = text.split_once(';') else {
                    continue;
                };
                let Some(seq) = head.split(',').nth(1).and_then(|s| s.parse::<u64>().ok()) else {
                    continue;
                };
                if after.is_none_or(|a| seq > a) {
                    let message = message.lines().next().unwrap_or("").to_string();
                    records.push((seq, message));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // Records were overwritten while reading: the next read goes on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(records)
}

/// Whether this kernel accepts a netem qdisc, tried in a throwaway network namespace.
pub async fn has_netem() -> Option<bool> {
    let out = tokio::process::Command::new("unshare")
        .args([
            "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .output()
        .await
        .ok()?;
    if out.status.success() {
        return Some(true);
    }
    String::from_utf8_lossy(&out.stderr)
        .contains("Specified qdisc kind is unknown")
        .then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peer of a socket this test listens on is this process.
    #[test]
    fn the_peer_of_a_unix_socket_is_its_listener() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(
            unix_peer_uid(&path).unwrap(),
            nix::unistd::geteuid().as_raw()
        );
        assert!(unix_peer_uid(&dir.path().join("none.sock")).is_err());
    }

    /// The dead-man's switch: the wait ends when the run's process exits, through the
    /// pidfd (never the 100 ms polling, which would hang here on the unreaped child).
    #[test]
    fn wait_for_exit_returns_when_the_process_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.3")
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        wait_for_exit(child.id(), |_| panic!("the pidfd should have been used"));
        let waited = started.elapsed();
        child.wait().unwrap();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        // A process that is gone: nothing to wait for.
        let started = std::time::Instant::now();
        wait_for_exit(child.id(), |_| false);
        assert!(started.elapsed() < Duration::from_millis(200));
    }

    #[test]
    fn the_kill_script_does_not_match_itself() {
        let marker = "faultline-stress-00000000deadbeef";
        let s = kill_by_marker_script(marker);
        assert!(!s.contains(marker));
        assert!(s.contains("faultline-stress"));
        assert_eq!(remaining("remaining=0\n"), Some(0));
        assert_eq!(remaining("remaining=3"), Some(3));
        assert_eq!(remaining(""), None);
    }

    #[test]
    fn markers_are_whole_arguments() {
        let me = std::process::id() as i32;
        assert!(!pids_with_marker("faultline-never-a-marker-xyz").contains(&me));
    }
}
