//! Every Kubernetes fault against a real cluster. Opt-in:
//!
//! - `FAULTLINE_E2E_KUBECONFIG`: the kubeconfig of a disposable cluster (required).
//! - `FAULTLINE_E2E_CONTEXT`: its context (default: the current one).
//! - `FAULTLINE_E2E_TC_IMAGE`: the helpers' image, with `sh`, `sleep`, `tc`, `iptables`
//!   and `faultline`: the `helper` target of deploy/Dockerfile (default
//!   `faultline-helper:e2e`, built and loaded into the cluster as README says).
//! - `FAULTLINE_E2E_IMAGE`: the target pods' image, with `sh`, `sleep` and `echo`
//!   (default `busybox:1.36`).
//!
//! It creates the namespace `faultline-e2e-<random>` (Pod Security `privileged`, which the
//! helpers need) with a three-replica Deployment, runs kill, pause, network (netem or its
//! fallback, and `delay` through the nfqueue engine, fail-open included) and cpu_stress
//! through the library, `faultline doctor FILE`, a `faultline run` and a `faultline
//! recover` through the binary, and deletes the namespace at the end, also when an
//! assertion fails.
//!
//! It is `#[ignore]`d, so that a plain `cargo test` shows it as ignored rather than
//! passed; run it with
//! `FAULTLINE_E2E_KUBECONFIG=... cargo test --test kubernetes_e2e -- --ignored`
//! (README: Kubernetes, for kind and k3d).

use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, AttachParams, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use faultline::experiment::model::{Fault, KubernetesProbe, KubernetesTarget};
use faultline::fault;
use faultline::journal::{Entry, Journal, PlatformRef};
use faultline::platform::kubernetes::KubernetesPlatform;
use faultline::platform::{NetAccess, Platform, PlatformError, Target};

struct Env {
    kubeconfig: std::path::PathBuf,
    context: String,
    client: kube::Client,
    ns: String,
    tc_image: String,
    image: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs FAULTLINE_E2E_KUBECONFIG: a disposable cluster"]
async fn every_fault_against_a_real_cluster() {
    // Asked for by `--ignored` without a cluster: that is a failure, never a pass.
    let kubeconfig = std::env::var_os("FAULTLINE_E2E_KUBECONFIG").expect(
        "FAULTLINE_E2E_KUBECONFIG must name the kubeconfig of a disposable cluster (see README: Kubernetes)",
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = std::path::PathBuf::from(kubeconfig);
    let kc = Kubeconfig::read_from(&kubeconfig).expect("FAULTLINE_E2E_KUBECONFIG is a kubeconfig");
    let context = std::env::var("FAULTLINE_E2E_CONTEXT")
        .ok()
        .or_else(|| kc.current_context.clone())
        .expect("a context: set FAULTLINE_E2E_CONTEXT or current-context");
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .unwrap();
    let env = Env {
        kubeconfig,
        context,
        client: kube::Client::try_from(config).unwrap(),
        ns: format!("faultline-e2e-{:08x}", rand::random::<u32>()),
        tc_image: std::env::var("FAULTLINE_E2E_TC_IMAGE")
            .unwrap_or_else(|_| "faultline-helper:e2e".into()),
        image: std::env::var("FAULTLINE_E2E_IMAGE").unwrap_or_else(|_| "busybox:1.36".into()),
    };
    let outcome = std::panic::AssertUnwindSafe(scenario(&env))
        .catch_unwind()
        .await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    if let Err(e) = namespaces.delete(&env.ns, &DeleteParams::default()).await {
        eprintln!("cannot delete namespace {}: {e}", env.ns);
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn fault(v: serde_json::Value) -> Fault {
    serde_json::from_value(v).unwrap()
}

fn probe(v: serde_json::Value) -> KubernetesProbe {
    serde_json::from_value(v).unwrap()
}

async fn scenario(env: &Env) {
    setup(env).await;
    let spec = KubernetesTarget {
        namespace: env.ns.clone(),
        selector: Some("app=web".into()),
        container: Some("app".into()),
        ..Default::default()
    };
    let p = KubernetesPlatform::with_client(env.client.clone(), spec, Some(env.context.clone()))
        .with_tc_image(Some(env.tc_image.clone()));

    // Discovery and the probe.
    let targets = p.discover().await.unwrap();
    assert_eq!(targets.len(), 3, "{targets:?}");
    let ready = probe(json!({"namespace": env.ns, "selector": "app=web", "ready": ">= 3"}));
    let s =
        faultline::probe::kubernetes::sample_with(&env.client, Some(&env.context), &ready).await;
    assert!(s.ok, "{s:?}");
    let available = probe(json!({"namespace": env.ns, "deployment": "web", "available": 3}));
    let s = faultline::probe::kubernetes::sample_with(&env.client, Some(&env.context), &available)
        .await;
    assert!(s.ok, "{s:?}");

    pause(env, &p, &targets[0]).await;
    network(env, &p, &targets[1]).await;
    nfqueue(env, &p, &targets[1], &targets[0]).await;
    cpu(env, &p, &targets[1]).await;
    kill(env, &p, &targets[2]).await;
    cli_doctor(env).await;
    cli_run(env).await;
    cli_recover(env, &p).await;
}

/// `faultline doctor FILE` asks the API server for every permission the file needs.
async fn cli_doctor(env: &Env) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latency.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: e2e-doctor\ntarget:\n  kubernetes: {{context: {ctx}, namespace: {ns}, selector: app=web}}\nsteady_state:\n  - name: available\n    kubernetes: {{context: {ctx}, namespace: {ns}, deployment: web, available: 3}}\nfaults:\n  - network: {{delay: 100ms, duration: 10s}}\n  - cpu_stress: {{duration: 10s}}\n",
            ctx = serde_json::to_string(&env.context).unwrap(),
            ns = env.ns
        ),
    )
    .unwrap();
    let file_arg = file.display().to_string();
    let out = tokio::task::block_in_place(|| {
        faultline(env, &["doctor", &file_arg], &dir.path().join("s"))
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "Kubernetes permissions in namespace `{}`: all 6 allowed",
            env.ns
        )),
        "{stdout}"
    );
}

async fn setup(env: &Env) {
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": env.ns, "labels": {
            "pod-security.kubernetes.io/enforce": "privileged",
            "faultline.test": "true"
        }}
    }))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.ns);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "app",
                        "image": env.image,
                        "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
                    }]
                }
            }
        }
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    wait_ready(env, 3).await;
}

/// Waits until `n` pods of the deployment are Ready and none is terminating.
async fn wait_ready(env: &Env, n: usize) {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let start = Instant::now();
    loop {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap();
        let ready = list
            .items
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && faultline::platform::kubernetes::api::pod_ready(p)
            })
            .count();
        if ready == n && list.items.len() == n {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{ready} of {n} pods ready after 5 minutes"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs `echo ok` in the target's container; `None` when it does not answer within `wait`.
async fn echo(env: &Env, pod: &str, wait: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let run = async {
        let ap = AttachParams::default().container("app").stderr(false);
        let mut attached = pods.exec(pod, ["echo", "ok"], &ap).await.ok()?;
        let mut out = String::new();
        attached.stdout()?.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    tokio::time::timeout(wait, run).await.ok().flatten()
}

async fn pause(env: &Env, p: &KubernetesPlatform, t: &Target) {
    assert_eq!(
        echo(env, &t.name, Duration::from_secs(20)).await.as_deref(),
        Some("ok\n")
    );
    let f = fault(json!({"pause": {"duration": "20s"}}));
    let undo = fault::prepare(p, &f, t).await.unwrap();
    fault::inject(p, &f, t, undo.as_ref()).await.unwrap();
    assert!(p.is_frozen(t).await.unwrap());
    // A frozen container runs nothing. containerd accepts the exec stream and returns
    // empty output; other runtimes hang or refuse: in no case does `echo` answer.
    let frozen = echo(env, &t.name, Duration::from_secs(5)).await;
    assert_ne!(
        frozen.as_deref(),
        Some("ok\n"),
        "a frozen container answered"
    );
    fault::revert(p, undo.as_ref().unwrap()).await.unwrap();
    assert!(!p.is_frozen(t).await.unwrap());
    assert_eq!(
        echo(env, &t.name, Duration::from_secs(20)).await.as_deref(),
        Some("ok\n")
    );
    // The helper is gone.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let helpers = pods
        .list(&ListParams::default().labels("faultline.helper"))
        .await
        .unwrap();
    assert!(
        helpers.items.is_empty(),
        "helpers left: {}",
        helpers.items.len()
    );
}

async fn network(env: &Env, p: &KubernetesPlatform, t: &Target) {
    let f = fault(json!({"network": {"delay": "200ms", "duration": "20s"}}));
    let undo = fault::prepare(p, &f, t).await.unwrap().unwrap();
    // `engine: auto`: netem, or on nodes without sch_netem the nfqueue engine.
    fault::inject(p, &f, t, Some(&undo)).await.unwrap();
    let fault::UndoRecord::RemoveQdisc { qdisc, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    let show: Vec<String> = ["tc", "qdisc", "show", "dev", "eth0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = p.netns_exec(t, &qdisc.access, &show).await.unwrap();
    if !(out.stdout.contains("fa17:") && out.stdout.contains("delay 200")) {
        eprintln!("the nodes have no netem ({out:?}): the nfqueue engine runs");
        let d = qdisc.delayer.clone().expect("auto keeps a delayer ready");
        let list: Vec<String> = ["iptables", "-w", "-S", "OUTPUT"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rules = p.netns_exec(t, &qdisc.access, &list).await.unwrap();
        assert!(
            rules.stdout.contains(&d.marker) && rules.stdout.contains("--queue-bypass"),
            "{rules:?}"
        );
    }
    fault::revert(p, &undo).await.unwrap();
    // The helper has ended, and with it everything it held.
    let NetAccess::Sidecar { helper, .. } = &qdisc.access else {
        panic!()
    };
    let container = helper.split_once('/').unwrap().1;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let pod = pods.get(&t.name).await.unwrap();
    let status = pod
        .status
        .unwrap()
        .ephemeral_container_statuses
        .unwrap()
        .into_iter()
        .find(|c| c.name == container)
        .unwrap();
    let ended = status
        .state
        .unwrap()
        .terminated
        .expect("the helper has ended");
    assert_eq!(ended.exit_code, 0);
    assert_eq!(
        fault::revert(p, &undo).await,
        Err(PlatformError::Gone(t.name.clone())),
        "a second revert finds the helper ended"
    );
}

/// The average round trip from `from`'s container to `peer`'s pod IP (busybox `ping`),
/// in milliseconds.
async fn rtt_ms(env: &Env, from: &str, peer: &Target) -> f64 {
    use tokio::io::AsyncReadExt;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let ip = pods
        .get(&peer.name)
        .await
        .unwrap()
        .status
        .unwrap()
        .pod_ip
        .expect("the peer has an IP");
    let ap = AttachParams::default().container("app").stderr(false);
    let mut attached = pods
        .exec(from, ["ping", "-c", "4", "-W", "3", ip.as_str()], &ap)
        .await
        .unwrap();
    let mut out = String::new();
    attached
        .stdout()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    // busybox: "round-trip min/avg/max = 0.061/0.074/0.093 ms"
    let stats = out
        .lines()
        .find_map(|l| l.split_once(" = "))
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("no round-trip line from ping: {out:?}"));
    stats.split('/').nth(1).unwrap().parse().unwrap()
}

/// The state of an ephemeral container of `pod`, waiting up to 20 s for it to terminate
/// when `terminated` is asked for.
async fn ephemeral_exit(env: &Env, pod: &str, container: &str) -> Option<i32> {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let start = Instant::now();
    loop {
        let p = pods.get(pod).await.unwrap();
        let state = p
            .status
            .and_then(|s| s.ephemeral_container_statuses)
            .into_iter()
            .flatten()
            .find(|c| c.name == container)
            .and_then(|c| c.state);
        if let Some(t) = state.and_then(|s| s.terminated) {
            return Some(t.exit_code);
        }
        if start.elapsed() > Duration::from_secs(20) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `delay` through the nfqueue engine: the delayer in an ephemeral container, its rule in
/// the pod's namespace; measured by ping from the pod. Then the delayer dies mid-fault
/// and traffic flows (fail open), and revert still succeeds.
async fn nfqueue(env: &Env, p: &KubernetesPlatform, t: &Target, peer: &Target) {
    let before = rtt_ms(env, &t.name, peer).await;
    assert!(before < 100.0, "baseline round trip {before} ms");
    let f = fault(json!({"network": {"delay": "200ms", "duration": "30s", "engine": "nfqueue"}}));
    assert_eq!(fault::preflight(&f, p).await, Ok(()));
    let list_rules: Vec<String> = ["iptables", "-w", "-S", "OUTPUT"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for die in [false, true] {
        let undo = fault::prepare(p, &f, t).await.unwrap().unwrap();
        let fault::UndoRecord::RemoveQdisc { qdisc, .. } = &undo.record else {
            panic!("{undo:?}")
        };
        let d = qdisc
            .delayer
            .clone()
            .expect("the nfqueue engine has a delayer");
        fault::inject(p, &f, t, Some(&undo)).await.unwrap();
        let rules = p.netns_exec(t, &qdisc.access, &list_rules).await.unwrap();
        assert!(
            rules.stdout.contains(&format!(
                "--comment {} -j NFQUEUE --queue-num {} --queue-bypass",
                d.marker, d.queue
            )),
            "{rules:?}"
        );
        let during = rtt_ms(env, &t.name, peer).await;
        assert!(
            during >= 180.0,
            "round trip {during} ms under a 200ms delay"
        );
        if die {
            // The delayer ends (as if evicted): its queue is unbound, its rule stays, and
            // `--queue-bypass` lets packets through.
            let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
            let ap = AttachParams::default().container(&d.marker).stderr(false);
            if let Ok(a) = pods.exec(&t.name, ["sh", "-c", "kill -TERM 1"], &ap).await {
                let _ = a.join().await;
            }
            assert!(ephemeral_exit(env, &t.name, &d.marker).await.is_some());
            let rules = p.netns_exec(t, &qdisc.access, &list_rules).await.unwrap();
            assert!(rules.stdout.contains(&d.marker), "{rules:?}");
            let open = rtt_ms(env, &t.name, peer).await;
            assert!(
                open < 100.0,
                "fail open: round trip {open} ms without the delayer"
            );
        }
        fault::revert(p, &undo).await.unwrap();
        assert!(
            ephemeral_exit(env, &t.name, &d.marker).await.is_some(),
            "the delayer's container has terminated"
        );
        let after = rtt_ms(env, &t.name, peer).await;
        assert!(after < 100.0, "round trip {after} ms after revert");
        let NetAccess::Sidecar { helper, .. } = &qdisc.access else {
            panic!()
        };
        let helper = helper.split_once('/').unwrap().1;
        assert_eq!(ephemeral_exit(env, &t.name, helper).await, Some(0));
    }
}

/// A stressor in an ephemeral container: running while injected, gone after revert.
async fn cpu(env: &Env, p: &KubernetesPlatform, t: &Target) {
    let f = fault(json!({"cpu_stress": {"workers": 1, "load": 50, "duration": "20s"}}));
    let undo = fault::prepare(p, &f, t).await.unwrap().unwrap();
    fault::inject(p, &f, t, Some(&undo)).await.unwrap();
    let fault::UndoRecord::StopStressor { stressor, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let running = |pod: Pod| {
        pod.status
            .and_then(|s| s.ephemeral_container_statuses)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.name == stressor.marker)
            .and_then(|c| c.state)
            .is_some_and(|s| s.running.is_some())
    };
    assert!(
        running(pods.get(&t.name).await.unwrap()),
        "the stressor is not running"
    );
    // An early revert (as on Ctrl-C): confirmed by the container's terminated state,
    // though the exec that stops it is killed with it.
    fault::revert(p, &undo).await.unwrap();
    let pod = pods.get(&t.name).await.unwrap();
    assert!(
        !running(pod.clone()),
        "the stressor still runs after revert"
    );
    let ended = pod
        .status
        .and_then(|s| s.ephemeral_container_statuses)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == stressor.marker)
        .and_then(|c| c.state)
        .and_then(|s| s.terminated);
    assert!(
        ended.is_some(),
        "the stressor's container has not terminated"
    );
    // A second revert (`recover`) finds it ended.
    fault::revert(p, &undo).await.unwrap();
}

async fn kill(env: &Env, p: &KubernetesPlatform, t: &Target) {
    let f = fault(json!({"kill": {}}));
    fault::inject(p, &f, t, None).await.unwrap();
    // A force delete: the pod object is gone at once.
    let waited = p
        .wait_gone(std::slice::from_ref(t), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // The Deployment's status still counts it; its replacement is not Ready yet.
    let available = probe(json!({"namespace": env.ns, "deployment": "web", "available": 3}));
    let s = faultline::probe::kubernetes::sample_with(&env.client, Some(&env.context), &available)
        .await;
    assert!(!s.ok, "recovered at once after a kill? {s:?}");
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let start = Instant::now();
    while pods
        .get_opt(&t.name)
        .await
        .unwrap()
        .is_some_and(|pod| pod.metadata.uid.as_deref() == Some(&t.id))
    {
        assert!(start.elapsed() < Duration::from_secs(60), "pod not deleted");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        p.signal(t, Default::default(), None).await,
        Err(PlatformError::Gone(t.name.clone()))
    );
    wait_ready(env, 3).await;
}

fn faultline(env: &Env, args: &[&str], state: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .env("FAULTLINE_STATE_DIR", state)
        .env("FAULTLINE_TC_IMAGE", &env.tc_image)
        .output()
        .unwrap()
}

async fn cli_run(env: &Env) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pause.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nname: e2e-pause\ntarget:\n  kubernetes: {{context: {ctx}, namespace: {ns}, selector: app=web}}\nsteady_state:\n  - name: ready\n    kubernetes: {{context: {ctx}, namespace: {ns}, selector: app=web, ready: \">= 3\"}}\nduring:\n  interval: 1s\n  probes:\n    - name: others ready\n      kubernetes: {{context: {ctx}, namespace: {ns}, selector: app=web, ready: \">= 2\"}}\nfaults:\n  - pause: {{duration: 5s}}\nrecovery: {{timeout: 1m, interval: 1s}}\n",
            // JSON strings are YAML: a context may contain `:` or `/`.
            ctx = serde_json::to_string(&env.context).unwrap(),
            ns = env.ns
        ),
    )
    .unwrap();
    let report = dir.path().join("r.json");
    let file_arg = file.display().to_string();
    let report_arg = format!("json:{}", report.display());
    let state = dir.path().join("state");
    let out = tokio::task::block_in_place(|| {
        faultline(env, &["run", &file_arg, "--report", &report_arg], &state)
    });
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["verdict"], "passed");
    assert_eq!(r["faults"][0]["status"], "reverted");
}

/// A pause left by a run that died is reverted by `faultline recover` in a new process.
async fn cli_recover(env: &Env, p: &KubernetesPlatform) {
    let targets = p.discover().await.unwrap();
    let t = &targets[0];
    let f = fault(json!({"pause": {"duration": "2m"}}));
    let undo = fault::prepare(p, &f, t).await.unwrap().unwrap();
    fault::inject(p, &f, t, Some(&undo)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    Journal::at(&state)
        .open(&Entry {
            id: "e2e-0".into(),
            at: chrono::Utc::now(),
            run: "e2e".into(),
            pid: dead_pid,
            experiment: "e2e".into(),
            fault: f.describe(),
            target: String::new(),
            platform: PlatformRef {
                kind: "kubernetes".into(),
                endpoint: Some(p.endpoint()),
                tls: None,
            },
            undo,
        })
        .unwrap();
    let out = tokio::task::block_in_place(|| faultline(env, &["recover"], &state));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!p.is_frozen(t).await.unwrap());
    assert_eq!(
        echo(env, &t.name, Duration::from_secs(20)).await.as_deref(),
        Some("ok\n")
    );
}
