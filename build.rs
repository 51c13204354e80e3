//! Links the `faultline` binary as a position-dependent executable on Linux.
//!
//! A PIE of this size carries ~50,000 relative relocations over 1.4 MB of data that the
//! dynamic loader patches (one copy-on-write fault per page) at every start: 1.5-2 ms of a
//! 3.5 ms `faultline --version`, paid again by the dead-man's switch, which is a second
//! process of the same binary. Linked at a fixed address there are none. The heap, the
//! stacks and the shared libraries stay randomized, as for the executables Go's toolchain
//! links by default (docker, kubectl, pumba); the binary's own code and data do not.
//! `FAULTLINE_PIE=1` at build time keeps the position-independent build (a hardened
//! distribution's choice), at the cost of that start-up.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=FAULTLINE_PIE");
    let pie = std::env::var("FAULTLINE_PIE").is_ok_and(|v| v == "1");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
