//! The skip recorder of `tests/support`, for the library's own tests that need Docker: a
//! test that cannot run records why (listed by `scripts/test.sh`, a failure under
//! `CI=true`) instead of passing in silence.

#![allow(dead_code, unreachable_pub)]

pub fn root() -> std::path::PathBuf {
    env!("CARGO_MANIFEST_DIR").into()
}

#[path = "../tests/support/skip.rs"]
pub mod skip;

/// Whether the Docker engine answers; when it does not, the skip is recorded.
pub fn require_docker() -> bool {
    let ok = std::process::Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip::skip(
            skip::Skip::Missing,
            "the Docker engine does not answer (`docker info` failed)",
        );
    }
    ok
}

/// A value of `T` from JSON, for tests that build a model piece inline.
pub fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// A TCP listener on a free loopback port, and its address.
pub async fn local_listener() -> (tokio::net::TcpListener, std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// An experiment loaded from YAML text as `faultline run` loads a file (variables
/// substituted, validated), with no process environment.
pub fn experiment(yaml: &str) -> crate::experiment::model::Experiment {
    let none = crate::experiment::VarOverrides::default();
    crate::experiment::load_experiment_str("t.yaml", yaml, &none, &|_| None)
        .unwrap()
        .experiment
}
