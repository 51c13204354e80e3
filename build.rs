//! Links the `faultline` binary as a position-dependent executable on Linux.
//!
//! A PIE of this size carries ~50,000 relative relocations over 1.4 MB of data that the
//! dynamic loader patches (one copy-on-write fault per page) at every start: 1.5-2 ms of a
//! 3.5 ms `faultline --version`, paid again by the dead-man's switch, which is a second
//! process of the same binary. Linked at a fixed address there are none. The heap, the
//! stacks and the shared libraries stay randomized, as for the executables Go's toolchain
//! links by default (docker, kubectl, pumba).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
