//! `io_stress`: real block I/O inside the target's blkio (v1) / io (v2) cgroup, so that it
//! counts against the container's own I/O limits and shows in its own I/O counters.
//!
//! Each worker passes over a file of its own (`.faultline-io-…`) under `path`, bypassing
//! the page cache (O_DIRECT) so that every byte reaches the block device in the writer's
//! cgroup: buffered writes would be written back later by the kernel's flusher threads,
//! outside the container's cgroup on v1.
//!
//! - `host`: faultline's own binary (`faultline iohog`, hidden), started stopped, moved
//!   into every cgroup the container's init process is in, then continued. It opens `path`
//!   through the container's root (`/proc/PID/root`) resolved inside that root (openat2,
//!   RESOLVE_IN_ROOT), so no link in the container leads onto this host. It has a
//!   parent-death signal and its own deadline, at which it removes its files.
//! - `exec`: a shell loop of `dd … oflag=direct` / `iflag=direct` inside the target.
//!
//! A directory on tmpfs has no block device (its I/O is memory), and one on FUSE
//! (fuse-overlayfs, rootless Docker's storage) has its I/O done by the FUSE daemon outside
//! the container's cgroups: both are refused with the reason. The files' names are
//! journaled before they are written, so `recover` removes them after a crash. The
//! cgroup's counters are read when the fault is prepared and again before it is reverted:
//! the report says what the container read and wrote meanwhile.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::cpu_stress::{CpuAccess, StressorCommand, StressorRef, script_deadline, start_stressor};
use super::disk_fill::{access_and_space, human, quote, remove_files, sh};
use super::{FaultEffects, FaultKind, Injected, Prepared, Undo, UndoRecord};
use crate::experiment::model::{
    FaultProblems, FaultSpec, IoMode, IoStressFault, Target as TargetSpec, fault_timing,
};
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{Placement, Platform, PlatformError, Target, host};

/// Prefix of every stressor's marker.
pub const MARKER_PREFIX: &str = "faultline-io-";

/// Prefix of the workers' files.
pub const FILE_PREFIX: &str = ".faultline-io-";

/// One read or write: 1 MiB, a multiple of every block size O_DIRECT asks alignment to.
const BLOCK: usize = 1 << 20;

/// What revert needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoRecord {
    pub marker: String,
    pub access: CpuAccess,
    /// The directory inside the target.
    pub path: String,
    /// The workers' files in it, by name.
    pub files: Vec<String>,
    /// The bytes of each file.
    pub bytes: u64,
    /// The cgroup's counters when the fault was prepared, when they could be read.
    #[serde(default)]
    pub counters_before: Option<IoCounters>,
}

impl StressorRef for IoRecord {
    fn stressor(&self) -> (&str, Placement) {
        (&self.marker, self.access.in_container())
    }
}

/// Bytes a cgroup read from and wrote to block devices, summed over devices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoCounters {
    pub read: u64,
    pub written: u64,
}

/// The counters of a v1 `blkio.throttle.io_service_bytes` (`MAJ:MIN Read N` lines) or a
/// v2 `io.stat` (`MAJ:MIN rbytes=N wbytes=N …`); `None` when the text is neither.
pub fn parse_counters(text: &str) -> Option<IoCounters> {
    let device = |d: &str| {
        d.split_once(':')
            .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
    };
    let mut c = IoCounters::default();
    let mut seen = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["Total", _] => seen = true,
            [dev, op, n] if device(dev) => {
                let n: u64 = n.parse().unwrap_or(0);
                match *op {
                    "Read" => c.read += n,
                    "Write" => c.written += n,
                    _ => {}
                }
                seen = true;
            }
            [dev, rest @ ..] if device(dev) => {
                for kv in rest {
                    match kv.split_once('=') {
                        Some(("rbytes", n)) => c.read += n.parse().unwrap_or(0),
                        Some(("wbytes", n)) => c.written += n.parse().unwrap_or(0),
                        _ => {}
                    }
                }
                seen = true;
            }
            _ => {}
        }
    }
    seen.then_some(c)
}

/// The counters of the cgroup directories `dirs` (v1 blkio, else v2 io).
pub fn read_cgroup_counters(dirs: &[std::path::PathBuf]) -> Option<IoCounters> {
    let v1 = dirs
        .iter()
        .find_map(|d| std::fs::read_to_string(d.join("blkio.throttle.io_service_bytes")).ok());
    let v2 = || {
        dirs.iter()
            .find_map(|d| std::fs::read_to_string(d.join("io.stat")).ok())
    };
    v1.or_else(v2).as_deref().and_then(parse_counters)
}

/// The shell program that prints the container's own I/O counters (its cgroup is what
/// /sys/fs/cgroup shows inside it).
const COUNTERS_INSIDE: &str = "cat /sys/fs/cgroup/blkio/blkio.throttle.io_service_bytes 2>/dev/null \
    || cat /sys/fs/cgroup/io.stat 2>/dev/null; true";

async fn counters(
    platform: &dyn Platform,
    target: &Target,
    access: CpuAccess,
) -> Option<IoCounters> {
    match access {
        CpuAccess::Host => read_cgroup_counters(&platform.cgroups(target).await.ok()?),
        CpuAccess::Exec => {
            let argv = ["sh", "-c", COUNTERS_INSIDE].map(str::to_string);
            let out = platform.exec(target, &argv).await.ok()?;
            parse_counters(&out.stdout)
        }
    }
}

const TMPFS_MAGIC: u64 = 0x0102_1994;
const RAMFS_MAGIC: u64 = 0x8584_58f6;
const FUSE_MAGIC: u64 = 0x6573_5546;

/// Why I/O on a filesystem of this type would not be block I/O of the container.
pub fn unaccounted_fs(magic: u64) -> Option<&'static str> {
    match magic {
        TMPFS_MAGIC | RAMFS_MAGIC => {
            Some("is on tmpfs, which has no block device behind it (its I/O is memory)")
        }
        FUSE_MAGIC => Some(
            "is on a FUSE filesystem (fuse-overlayfs, rootless Docker's storage): its block I/O is done by the FUSE daemon outside the container's cgroups and would not count against the container",
        ),
        _ => None,
    }
}

/// The filesystem type (statfs magic) of `path` in the target.
async fn fs_magic(
    platform: &dyn Platform,
    target: &Target,
    access: CpuAccess,
    path: &str,
) -> Result<Option<u64>, PlatformError> {
    match access {
        CpuAccess::Host => {
            let dir =
                super::disk_fill::dir_in_root(&platform.host_root(target).await?, path, target)?;
            let s = nix::sys::statfs::fstatfs(&dir).map_err(|e| {
                PlatformError::Refused(format!("cannot read the filesystem of `{path}`: {e}"))
            })?;
            Ok(Some(s.filesystem_type().0 as u64 & 0xffff_ffff))
        }
        CpuAccess::Exec => {
            let out = platform
                .exec(target, &sh(format!("stat -f -c %t {}", quote(path))))
                .await?;
            // An image without `stat -f`: the type is not known, the I/O goes ahead.
            Ok(u64::from_str_radix(out.stdout.trim(), 16).ok())
        }
    }
}

/// Whole MiB covering `bytes`, in bytes.
fn file_bytes(bytes: u64) -> u64 {
    bytes.div_ceil(BLOCK as u64).max(1) * BLOCK as u64
}

impl IoMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IoMode::Write => "write",
            IoMode::Read => "read",
            IoMode::Mixed => "mixed",
        }
    }

    pub fn from_arg(s: &str) -> Option<IoMode> {
        [IoMode::Write, IoMode::Read, IoMode::Mixed]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// One worker's passes over its file until the epoch second `until`, then the file is
/// removed.
fn worker(dir: &OwnedFd, name: &str, bytes: u64, mode: IoMode, until: u64) -> std::io::Result<()> {
    let (mut f, direct) = match host::create_in(dir, name, true) {
        Ok(f) => (f, true),
        // A filesystem without O_DIRECT: buffered, and synced after every write pass.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let _ = host::remove_in(dir, name);
            (host::create_in(dir, name, false)?, false)
        }
        Err(e) => return Err(e),
    };
    let mut raw = vec![0xa5u8; BLOCK + 4096];
    let off = raw.as_ptr().align_offset(4096);
    let buf = &mut raw[off..off + BLOCK];
    let blocks = bytes / BLOCK as u64;
    let write_pass = |f: &mut std::fs::File, buf: &[u8]| -> std::io::Result<()> {
        f.seek(SeekFrom::Start(0))?;
        for _ in 0..blocks {
            if host::past(until) {
                break;
            }
            f.write_all(buf)?;
        }
        if direct { Ok(()) } else { f.sync_data() }
    };
    let read_pass = |f: &mut std::fs::File, buf: &mut [u8]| -> std::io::Result<()> {
        f.seek(SeekFrom::Start(0))?;
        for _ in 0..blocks {
            if host::past(until) {
                break;
            }
            f.read_exact(buf)?;
        }
        Ok(())
    };
    if mode == IoMode::Read {
        write_pass(&mut f, buf)?;
        if !direct {
            // Reads must come from the device, not the page cache it was written through.
            let _ = nix::fcntl::posix_fadvise(
                &f,
                0,
                0,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            );
        }
    }
    while !host::past(until) {
        match mode {
            IoMode::Write => write_pass(&mut f, buf)?,
            IoMode::Read => read_pass(&mut f, buf)?,
            IoMode::Mixed => {
                write_pass(&mut f, buf)?;
                read_pass(&mut f, buf)?;
            }
        }
    }
    Ok(())
}

/// The body of the hidden `faultline iohog` command: one thread per file of `files` in the
/// directory `path` of the root `root`, each passing over its file until the epoch second
/// `until`; the files are removed then.
pub fn churn(
    root: &Path,
    path: &str,
    files: &[String],
    bytes: u64,
    mode: IoMode,
    until: u64,
) -> std::io::Result<()> {
    let dir = std::sync::Arc::new(host::open_dir_in_root(root, path)?);
    let handles: Vec<_> = files
        .iter()
        .cloned()
        .map(|name| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let r = worker(&dir, &name, bytes, mode, until);
                let _ = host::remove_in(&dir, &name);
                r
            })
        })
        .collect();
    let mut first_error = Ok(());
    for h in handles {
        let r = h
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("an I/O worker panicked")));
        if first_error.is_ok() {
            first_error = r;
        }
    }
    first_error
}

/// The shell program of the `exec` strategy: one background loop per file, each passing
/// over it with `dd` (O_DIRECT) until `seconds` have passed ([`script_deadline`]), then
/// removing it. `$0` carries the marker.
pub fn exec_script(dir: &str, files: &[String], bytes: u64, mode: IoMode, seconds: u64) -> String {
    let count = bytes / BLOCK as u64;
    let write = format!(
        "dd if=/dev/zero of=\"$1\" bs=1M count={count} oflag=direct conv=notrunc,fsync 2>/dev/null"
    );
    let read = "dd if=\"$1\" of=/dev/null bs=1M iflag=direct 2>/dev/null".to_string();
    let (setup, pass) = match mode {
        IoMode::Write => (String::new(), write.clone()),
        IoMode::Read => (format!("{write};"), read),
        IoMode::Mixed => (String::new(), format!("{write}; {read}")),
    };
    let starts: String = files
        .iter()
        .map(|f| {
            format!(
                "w {} & ",
                quote(&format!("{}/{f}", dir.trim_end_matches('/')))
            )
        })
        .collect();
    let deadline = script_deadline(seconds);
    format!(
        "{deadline} \
         left() {{ read u _ </proc/uptime; n=${{u%.*}}${{u#*.}}; [ \"$n\" -lt \"$end\" ]; }}; \
         w() {{ {setup} while left; do {pass}; done; rm -f \"$1\"; }}; \
         {starts}wait"
    )
}

impl FaultSpec for IoStressFault {
    fault_timing!("io_stress");

    fn describe(&self) -> String {
        format!(
            "io_stress {} by {} worker(s), {} each, at {} for {}",
            self.mode.as_str(),
            self.workers,
            self.size,
            self.path,
            self.duration
        )
    }

    fn validate(&self, _target: &TargetSpec, p: &mut FaultProblems) {
        p.positive("duration", self.duration);
        super::cpu_stress::within(p, ("workers", self.workers), 1..=64, "");
        p.target_dir("path", &self.path);
    }
}

#[async_trait]
impl FaultKind for IoStressFault {
    async fn prepare(&self, platform: &dyn Platform, target: &Target) -> Prepared {
        let strategy = (self.strategy, self.name());
        let (access, free) = access_and_space(platform, target, strategy, &self.path).await?;
        if let Some(why) = fs_magic(platform, target, access, &self.path)
            .await?
            .and_then(unaccounted_fs)
        {
            return Err(PlatformError::Refused(format!(
                "`{}` in `{}` {why}: name a directory on a volume (docker run -v) for `path`",
                self.path, target.name
            )));
        }
        let bytes = file_bytes(self.size.bytes);
        let total = bytes * u64::from(self.workers);
        if total > free.available {
            return Err(PlatformError::Refused(format!(
                "{} worker file(s) of {} need {}, more than the {} the filesystem at `{}` in `{}` has free: ask for fewer or smaller files",
                self.workers,
                human(bytes),
                human(total),
                human(free.available),
                self.path,
                target.name
            )));
        }
        let id = format!("{:016x}", rand::random::<u64>());
        Ok(Some(Undo::new(UndoRecord::RemoveIoFiles {
            target: target.clone(),
            io: IoRecord {
                marker: format!("{MARKER_PREFIX}{id}"),
                access,
                path: self.path.clone(),
                files: (0..self.workers)
                    .map(|i| format!("{FILE_PREFIX}{id}-{i}"))
                    .collect(),
                bytes,
                counters_before: counters(platform, target, access).await,
            },
        })))
    }

    async fn inject(&self, platform: &dyn Platform, target: &Target, u: Option<&Undo>) -> Injected {
        let io = super::undo_part!(u, RemoveIoFiles { io }, self);
        let mode = self.mode;
        let command = match io.access {
            CpuAccess::Host => {
                let root = platform.host_root(target).await?;
                let options = [
                    ("--root", root.to_string_lossy().into_owned()),
                    ("--path", io.path.clone()),
                    ("--bytes", io.bytes.to_string()),
                    ("--mode", mode.as_str().into()),
                ];
                let files = io.files.iter().map(|f| ("--file", f.clone()));
                StressorCommand::host("iohog", options.into_iter().chain(files))
            }
            CpuAccess::Exec => StressorCommand::exec(move |seconds| {
                exec_script(&io.path, &io.files, io.bytes, mode, seconds)
            }),
        };
        start_stressor(platform, target, io, command, self.duration.std()).await
    }

    fn kubernetes_note(&self) -> Option<&'static str> {
        Some(
            "# io_stress runs in the target container itself through exec (strategy exec), so that it\n\
             # is charged to that container's cgroups: its image needs `sh`, `stat`, `dd` (with `oflag=direct`), `df` and `rm`.\n",
        )
    }

    /// The target pod read for its container, and exec into it (start, read the
    /// cgroup's counters, stop).
    fn rbac(&self) -> &'static [Permission] {
        rbac::EXEC_IN_TARGET
    }

    async fn effects(&self, platform: &dyn Platform, undo: &Undo) -> Option<FaultEffects> {
        let UndoRecord::RemoveIoFiles { target, io } = &undo.record else {
            return None;
        };
        let before = io.counters_before?;
        let now = counters(platform, target, io.access).await?;
        Some(FaultEffects {
            io_read_bytes: Some(now.read.saturating_sub(before.read)),
            io_written_bytes: Some(now.written.saturating_sub(before.written)),
            ..Default::default()
        })
    }
}

/// Stops every worker of the injection, confirms none is left, and removes their files
/// (files already gone are fine).
pub async fn revert(
    platform: &dyn Platform,
    target: &Target,
    io: &IoRecord,
) -> Result<(), PlatformError> {
    super::cpu_stress::revert(platform, target, io).await?;
    let names: Vec<&str> = io.files.iter().map(String::as_str).collect();
    let what = "faultline's I/O files";
    remove_files(platform, target, io.access, (&io.path, &names), what).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_of_both_cgroup_versions() {
        let v1 = "254:0 Read 4096\n254:0 Write 52428800\n254:0 Sync 52428800\n254:0 Async 0\n\
                  254:0 Discard 0\n254:0 Total 52432896\n8:0 Read 10\n8:0 Write 20\nTotal 52432926\n";
        assert_eq!(
            parse_counters(v1),
            Some(IoCounters {
                read: 4106,
                written: 52428820
            })
        );
        assert_eq!(parse_counters("Total 0\n"), Some(IoCounters::default()));
        let v2 = "254:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n\
                  8:0 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n";
        assert_eq!(
            parse_counters(v2),
            Some(IoCounters {
                read: 1025,
                written: 2050
            })
        );
        assert_eq!(parse_counters("cat: no such file\n"), None);
        assert_eq!(parse_counters(""), None);
    }

    #[test]
    fn tmpfs_and_fuse_are_refused_with_the_reason() {
        assert!(
            unaccounted_fs(TMPFS_MAGIC)
                .unwrap()
                .contains("no block device")
        );
        assert!(unaccounted_fs(FUSE_MAGIC).unwrap().contains("FUSE daemon"));
        // ext4 and xfs have block devices.
        assert_eq!(unaccounted_fs(0xef53), None);
        assert_eq!(unaccounted_fs(0x5846_5342), None);
        assert_eq!(file_bytes(1), 1 << 20);
        assert_eq!(file_bytes((1 << 20) + 1), 2 << 20);
        assert_eq!(file_bytes(64 << 20), 64 << 20);
    }

    #[test]
    fn the_exec_script_runs_one_dd_loop_per_file() {
        let files = vec!["a".to_string(), "b".to_string()];
        let w = exec_script("/io/", &files, 8 << 20, IoMode::Write, 10);
        assert!(w.contains("w '/io/a' & w '/io/b' & wait"), "{w}");
        assert!(w.contains("count=8 oflag=direct"), "{w}");
        assert!(!w.contains("iflag"), "{w}");
        assert!(w.contains("+ 1000 ))"), "10s in centiseconds");
        let r = exec_script("/io", &files, 8 << 20, IoMode::Read, 10);
        let (setup, rest) = r.split_once("while left").unwrap();
        assert!(setup.contains("oflag=direct"), "written once first: {r}");
        assert!(
            rest.contains("iflag=direct") && !rest.contains("oflag"),
            "{r}"
        );
        let m = exec_script("/io", &files, 8 << 20, IoMode::Mixed, 10);
        let (_, rest) = m.split_once("while left").unwrap();
        assert!(
            rest.contains("oflag=direct") && rest.contains("iflag=direct"),
            "{m}"
        );
    }

    /// The host stressor writes through a root as the container sees it, then removes
    /// its files at its deadline.
    #[test]
    fn the_host_stressor_passes_over_its_files_and_removes_them() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("io")).unwrap();
        let files = vec!["f0".to_string(), "f1".to_string()];
        let until = host::deadline(std::time::Duration::from_secs(2));
        let seen = std::thread::scope(|s| {
            let h = s.spawn(|| churn(root.path(), "/io", &files, 2 << 20, IoMode::Mixed, until));
            std::thread::sleep(std::time::Duration::from_millis(500));
            let seen: Vec<u64> = files
                .iter()
                .map(|f| {
                    std::fs::metadata(root.path().join("io").join(f))
                        .map(|m| m.len())
                        .unwrap_or(0)
                })
                .collect();
            h.join().unwrap().unwrap();
            seen
        });
        assert_eq!(seen, vec![2 << 20, 2 << 20], "each file has its size");
        assert!(
            std::fs::read_dir(root.path().join("io"))
                .unwrap()
                .next()
                .is_none(),
            "removed at the deadline"
        );
    }
}
