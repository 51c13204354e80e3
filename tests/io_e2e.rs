//! io_stress end to end on real containers, measured independently of faultline's report:
//! the container's own blkio (v1) / io (v2) cgroup counters, and the time a write of the
//! container's own takes while the fault is active.
//!
//! The targets keep their data on a volume (a directory on the host's disk): the
//! container's root filesystem may be FUSE (fuse-overlayfs), whose I/O is not the
//! container's. Each has a throttle rule on that disk: on cgroup v1, recent kernels count
//! a cgroup's I/O only on devices that have one, and it is the limit a noisy neighbour
//! inside the container competes for.

mod support;

use std::time::{Duration, Instant};

use support::*;

const MIB: u64 = 1 << 20;

/// One measurement at a time: two would share the disk.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A web container with a volume at /io and its I/O on that disk limited to `rate`.
fn io_container(test: &str, rate: &str) -> (Fleet, String) {
    let disk = docker_disk();
    let (w, r) = (format!("{disk}:{rate}"), format!("{disk}:{rate}"));
    let mut fleet = Fleet::new(test);
    let web = fleet.web(&[
        "--mount",
        "type=volume,dst=/io",
        "--device-write-bps",
        &w,
        "--device-read-bps",
        &r,
    ]);
    (fleet, web)
}

/// When the Docker engine answers: a container as [`io_container`] makes it (200 MB/s) and
/// an experiment `test` of `fault` on it.
fn io_fault(test: &str, fault: &str) -> Option<(Fleet, String, Experiment)> {
    if !require_docker() {
        return None;
    }
    let (fleet, web) = io_container(test, "200mb");
    let exp = fleet.experiment(test).fault(fault);
    Some((fleet, web, exp))
}

/// faultline's I/O files in the container's /io.
fn io_files(name: &str) -> usize {
    docker_ok(&["exec", name, "sh", "-c", "ls -a /io"])
        .lines()
        .filter(|l| l.starts_with(".faultline-io-"))
        .count()
}

/// Runs an io_stress fault and returns the container's counters' rise (read, written)
/// over the run, and the report.
fn stress(strategy: &str, mode: &str) -> (u64, u64, serde_json::Value, String) {
    let _one = serial();
    let (fleet, web) = io_container(&format!("io-{strategy}-{mode}"), "200mb");
    let id = fleet.id(&web);
    let (r0, w0) = io_counters(&id);
    let exp = Experiment::new("io").on(&fleet).fault(&format!(
        "io_stress: {{workers: 2, size: 16MiB, path: /io, mode: {mode}, duration: 3s, strategy: {strategy}}}"
    ));
    let out = Run::experiment(&exp).json_report().output();
    let report = out.report();
    assert_eq!(out.code, Some(0), "{report:#}");
    assert_eq!(report["faults"][0]["status"], "reverted", "{report:#}");
    let (r1, w1) = io_counters(&id);
    assert_eq!(io_files(&web), 0, "{strategy}/{mode}: files left in /io");
    (r1 - r0, w1 - w0, report, web)
}

#[track_caller]
fn assert_close(what: &str, got: u64, want: u64, tolerance: f64) {
    let (g, w) = (got as f64, want as f64);
    assert!(
        (g - w).abs() <= w * tolerance,
        "{what}: {:.1} MiB, want {:.1} MiB ±{:.0}%",
        g / MIB as f64,
        w / MIB as f64,
        tolerance * 100.0
    );
}

/// Write mode: the container's own write counter rises by at least one pass of every
/// worker's file, nothing is read, and the report's effect is what the counters say.
#[test]
fn io_stress_write_raises_the_containers_write_counter() {
    each_strategy(|strategy| {
        let (read, written, report, _) = stress(strategy, "write");
        assert!(
            written >= 2 * 16 * MIB,
            "{strategy}: wrote {written} bytes, less than one pass of 2 × 16 MiB"
        );
        assert!(read < MIB, "{strategy}: read {read} bytes in write mode");
        let effects = &report["faults"][0]["effects"];
        let said = effects["io_written_bytes"]
            .as_u64()
            .expect("io_written_bytes");
        // faultline reads the counters from its prepare to its revert, inside the run.
        assert_close(
            &format!("{strategy}: the report's writes"),
            said,
            written,
            0.10,
        );
        let events = report["events"].as_array().unwrap();
        assert!(
            events.iter().any(|e| e["kind"] == "fault_effect"
                && e["message"].as_str().unwrap().contains("to block devices")),
            "{strategy}: no fault_effect event: {events:#?}"
        );
    });
}

/// Read mode: each file is written exactly once (the asked volume: 2 × 16 MiB), then read
/// again and again from the device.
#[test]
fn io_stress_read_writes_the_asked_volume_once_then_reads() {
    each_strategy(|strategy| {
        let (read, written, report, _) = stress(strategy, "read");
        assert_close(&format!("{strategy}: writes"), written, 2 * 16 * MIB, 0.05);
        assert!(
            read >= 2 * 16 * MIB,
            "{strategy}: read {read} bytes, less than one pass of the files"
        );
        let said = report["faults"][0]["effects"]["io_read_bytes"]
            .as_u64()
            .expect("io_read_bytes");
        assert_close(&format!("{strategy}: the report's reads"), said, read, 0.10);
    });
}

/// Mixed mode: both counters rise.
#[test]
fn io_stress_mixed_reads_and_writes() {
    if !require_docker() {
        return;
    }
    let (read, written, _, _) = stress("host", "mixed");
    assert!(written >= 2 * 16 * MIB, "wrote {written}");
    assert!(read >= 2 * 16 * MIB, "read {read}");
}

/// Seconds a 10 MiB direct write inside the container takes.
fn probe_write(web: &str) -> f64 {
    let start = Instant::now();
    docker_ok(&[
        "exec",
        web,
        "sh",
        "-c",
        "dd if=/dev/zero of=/io/probe bs=1M count=10 oflag=direct 2>/dev/null && rm -f /io/probe",
    ]);
    start.elapsed().as_secs_f64()
}

/// A container limited to 20 MB/s on its disk: its own 10 MiB write takes about half a
/// second alone, and measurably longer while io_stress competes for the same limit;
/// afterwards it is back.
#[test]
fn io_stress_slows_a_write_in_the_container() {
    if !require_docker() {
        return;
    }
    let _one = serial();
    let (fleet, web) = io_container("io-probe", "20mb");
    let before = (0..2).map(|_| probe_write(&web)).fold(f64::MAX, f64::min);
    let exp = Experiment::new("io-probe")
        .on(&fleet)
        .fault("io_stress: {workers: 2, size: 8MiB, path: /io, duration: 8s}");
    let run = Run::experiment(&exp).json_report().spawn();
    assert!(
        wait_until(Duration::from_secs(5), || io_files(&web) == 2),
        "the workers' files did not appear"
    );
    std::thread::sleep(Duration::from_millis(500));
    let during = probe_write(&web);
    run.wait().expect(0);
    let after = (0..2).map(|_| probe_write(&web)).fold(f64::MAX, f64::min);
    assert!(
        during >= before * 2.0,
        "the probe's write took {during:.2}s during the fault, {before:.2}s before: not measurably slower"
    );
    assert!(
        after <= before * 1.5 + 0.2,
        "the probe's write took {after:.2}s after the revert, {before:.2}s before"
    );
}

/// A directory on tmpfs or FUSE would not be the container's block I/O: refused with the
/// reason, before anything is written.
#[test]
fn io_stress_refuses_a_path_without_the_containers_block_io() {
    if !require_docker() {
        return;
    }
    let mut fleet = Fleet::new("io-tmpfs");
    let web = fleet.web(&["--tmpfs", "/scratch:size=64m"]);
    for strategy in ["host", "exec"] {
        let exp = Experiment::new("io-tmpfs").on(&fleet).fault(&format!(
            "io_stress: {{size: 4MiB, path: /scratch, duration: 2s, strategy: {strategy}}}"
        ));
        let error = &Run::refusal(&exp);
        assert_contains(error, &["/scratch", "tmpfs", "no block device", "volume"]);
    }
    let files = docker_ok(&["exec", &web, "sh", "-c", "ls -a /scratch"]);
    assert!(!files.contains(".faultline-io-"), "{files}");
}

/// Files bigger than the filesystem's free space are refused.
#[test]
fn io_stress_refuses_more_than_the_filesystem_has() {
    let fault = "io_stress: {workers: 4, size: 100TiB, path: /io, duration: 2s}";
    let Some((_fleet, web, exp)) = io_fault("io-full", fault) else {
        return;
    };
    let error = &Run::refusal(&exp);
    assert_contains(error, &["more than the", "free", "/io"]);
    assert_eq!(io_files(&web), 0);
}

/// SIGKILL of faultline: the host stressor dies with it (parent-death signal); its files
/// stay until `recover` removes them, as the journal says.
#[test]
fn io_stress_files_are_removed_by_recover_after_a_sigkill() {
    let fault = "io_stress: {workers: 2, size: 4MiB, path: /io, duration: 60s}";
    let Some((fleet, web, exp)) = io_fault("io-recover", fault) else {
        return;
    };
    let state = Run::experiment(&exp).sigkilled_once("two stressor files", || io_files(&web) == 2);
    assert_eq!(io_files(&web), 2, "SIGKILL left the files");
    assert_eq!(state.open_entries(), 1);
    state.recover();
    assert_eq!(io_files(&web), 0, "recover removed the files");
    let id = fleet.id(&web);
    let stressors = host_processes("faultline-io-")
        .into_iter()
        .filter(|p| std::fs::read_to_string(p.join("cgroup")).is_ok_and(|c| c.contains(&id)))
        .count();
    assert_eq!(stressors, 0, "the stressor outlived faultline");
    assert!(state.is_clean());
}

#[test]
fn io_stress_validation_says_what_to_write() {
    assert_invalid_fault(
        "io_stress: {path: io, duration: 5s}",
        &["`path` must be absolute", "/io"],
    );
    assert_invalid_fault(
        "io_stress: {size: 10, duration: 5s}",
        &["size `10` has no unit"],
    );
    assert_invalid_fault(
        "io_stress: {workers: 0, duration: 5s}",
        &["workers 0 is outside 1..64"],
    );
    assert_invalid_fault("io_stress: {mode: append, duration: 5s}", &["append"]);
    assert_invalid_fault("io_stress: {size: 1MiB}", &["duration"]);
}
