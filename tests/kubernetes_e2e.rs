//! Every Kubernetes fault against a real cluster. Opt-in:
//!
//! - `FAULTLINE_E2E_KUBECONFIG`: the kubeconfig of a disposable cluster (required).
//! - `FAULTLINE_E2E_CONTEXT`: its context (default: the current one).
//! - `FAULTLINE_E2E_TC_IMAGE`: the helpers' image, with `sh`, `sleep`, `tc`, `iptables`
//!   and `faultline`: the `helper` target of deploy/Dockerfile (default
//!   `faultline-helper:e2e`, built and loaded into the cluster as README says).
//! - `FAULTLINE_E2E_IMAGE`: the target pods' image, with `sh`, `sleep`, `echo`, `httpd`
//!   and `wget` (default `busybox:1.36`).
//!
//! It creates the namespace `faultline-e2e-<random>` (Pod Security `privileged`, which the
//! helpers need) with a three-replica Deployment `web` (an emptyDir at `/data`) and a pod
//! `peer` behind a Service `peer`, and runs every fault kind Kubernetes supports, each
//! effect read back from the cluster itself:
//! - through the library: pause; network with `engine: auto` (netem or its fallback),
//!   `delay` through the nfqueue engine (fail-open included), loss, rate, jitter, corrupt,
//!   duplicate and reorder, a scope on peer pods, a partition, `hosts` (resolved in the
//!   pod) and a `dns` fault; cpu_stress, memory_stress, io_stress, disk_fill and a
//!   `command` inside the pod; the `http` fault (busybox httpd, wget from another pod);
//!   kill by pod delete, `process` and `container`;
//! - through the binary: `faultline doctor FILE`, a `faultline run` (pause), one with the
//!   faults that run where faultline runs (`command` on the host, `http_call`), and a
//!   `faultline recover`.
//!
//! It deletes the namespace at the end, also when an assertion fails. DNS names assume
//! the cluster domain `cluster.local` (kind's and k3d's).
//!
//! Without a cluster, `the_scenarios_experiment_files_validate` still checks that the
//! files it runs through the binary are valid experiments.
//!
//! It is `#[ignore]`d, so that a plain `cargo test` shows it as ignored rather than
//! passed; run it with
//! `FAULTLINE_E2E_KUBECONFIG=... cargo test --test kubernetes_e2e -- --ignored`
//! (README: Kubernetes, for kind and k3d).

use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
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
    let web_ip = pod_ip(env, &targets[0].name).await;
    nfqueue(env, &p, &targets[1], &web_ip).await;
    cpu(env, &p, &targets[1]).await;
    impairments(env, &p, &targets[1]).await;
    scopes(env, &p, &targets[1], &web_ip).await;
    dns(env, &p, &targets[1]).await;
    in_container(env, &p, &targets[1]).await;
    http(env, &p, &targets[0], &targets[1]).await;
    kill_process(env, &p, &targets[0]).await;
    kill_container(env, &p, &targets[0]).await;
    kill(env, &p, &targets[2]).await;
    cli_doctor(env).await;
    cli_run(env).await;
    cli_host_faults(env).await;
    cli_recover(env, &p).await;
}

/// An experiment file in `dir` on the `web` pods: `rest` follows the target block, with
/// `$CTX` and `$NS` standing for the context (JSON-quoted: a context may contain `:` or
/// `/`) and the namespace. Returns its path.
fn experiment(env: &Env, dir: &std::path::Path, name: &str, rest: &str) -> String {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, experiment_text(name, rest, &env.context, &env.ns)).unwrap();
    file.display().to_string()
}

fn experiment_text(name: &str, rest: &str, context: &str, ns: &str) -> String {
    let ctx = serde_json::to_string(context).unwrap();
    format!(
        "version: 1\nname: {name}\ntarget:\n  kubernetes: {{context: $CTX, namespace: $NS, selector: app=web}}\n{rest}"
    )
    .replace("$CTX", &ctx)
    .replace("$NS", ns)
}

/// What `faultline doctor FILE` checks.
const DOCTOR: &str = "steady_state:\n  - name: available\n    kubernetes: {context: $CTX, namespace: $NS, deployment: web, available: 3}\nfaults:\n  - network: {delay: 100ms, duration: 10s, to: {pods: {selector: app=peer}, hosts: [peer]}}\n  - cpu_stress: {duration: 10s}\n  - pause: {duration: 5s}\n  - kill: {container: app}\n  - memory_stress: {size: 8MiB, duration: 5s}\n";

/// What `faultline run` runs: a pause, the other pods staying ready.
const PAUSE_RUN: &str = "steady_state:\n  - name: ready\n    kubernetes: {context: $CTX, namespace: $NS, selector: app=web, ready: \">= 3\"}\nduring:\n  interval: 1s\n  probes:\n    - name: others ready\n      kubernetes: {context: $CTX, namespace: $NS, selector: app=web, ready: \">= 2\"}\nfaults:\n  - pause: {duration: 5s}\nrecovery: {timeout: 1m, interval: 1s}\n";

/// The faults that run where faultline runs: a command on the host creating `flag`, and an
/// `http_call` to `url`, each with its rollback.
fn host_faults(flag: &std::path::Path, url: &str) -> String {
    format!(
        "faults:\n  - command: {{run: [touch, {flag}], rollback: [rm, {flag}], duration: 2s}}\n  - http_call: {{url: \"{url}\", method: POST, duration: 2s, rollback: {{url: \"{url}\", method: DELETE}}}}\n",
        flag = flag.display()
    )
}

/// The files the scenario runs through the binary are valid experiments: checked here,
/// where no cluster is needed, so that a mistake in them is not found on a cluster first.
#[test]
fn the_scenarios_experiment_files_validate() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_faults(
        &dir.path().join("flag"),
        "http://127.0.0.1:8080/maintenance",
    );
    for (name, rest) in [
        ("e2e-doctor", DOCTOR),
        ("e2e-pause", PAUSE_RUN),
        ("e2e-host-faults", host.as_str()),
    ] {
        let file = dir.path().join(format!("{name}.yaml"));
        let text = experiment_text(name, rest, "kind-faultline-e2e", "faultline-e2e-00000000");
        std::fs::write(&file, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
            .arg("validate")
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
    }
}

/// `faultline run FILE` in `dir`, which must pass: its JSON report.
fn run_passing(env: &Env, dir: &std::path::Path, file: &str) -> serde_json::Value {
    let report = dir.join("r.json");
    let report_arg = format!("json:{}", report.display());
    let out = tokio::task::block_in_place(|| {
        faultline(
            env,
            &["run", file, "--report", &report_arg],
            &dir.join("state"),
        )
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
    r
}

/// `faultline doctor FILE` asks the API server for every permission the file needs.
async fn cli_doctor(env: &Env) {
    let dir = tempfile::tempdir().unwrap();
    let file_arg = experiment(env, dir.path(), "e2e-doctor", DOCTOR);
    let out = tokio::task::block_in_place(|| {
        faultline(env, &["doctor", &file_arg], &dir.path().join("s"))
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // How many depends on the faults; every one of them allowed, none missing.
    let allowed = format!(
        "[ok  ] Kubernetes permissions in namespace `{}`: all ",
        env.ns
    );
    assert!(stdout.contains(&allowed), "{stdout}");
    assert!(!stdout.contains("not allowed"), "{stdout}");
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
                        "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
                        // Node disk (not tmpfs): io_stress and disk_fill write here.
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                    }],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }
            }
        }
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    // A peer for the scopes, the partition and `hosts`: a pod `app=peer` and its Service.
    let peer: Pod = serde_json::from_value(json!({
        "metadata": {"name": "peer", "labels": {"app": "peer"}},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "app",
                "image": env.image,
                "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
            }]
        }
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    pods.create(&PostParams::default(), &peer).await.unwrap();
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "peer"},
        "spec": {"selector": {"app": "peer"}, "ports": [{"port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    let services: Api<Service> = Api::namespaced(env.client.clone(), &env.ns);
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    wait_ready(env, 3).await;
    wait_pods_ready(env, "app=peer", 1).await;
}

/// Waits until `n` pods of the deployment are Ready and none is terminating.
async fn wait_ready(env: &Env, n: usize) {
    wait_pods_ready(env, "app=web", n).await;
}

/// Waits until `n` pods matching `selector` are Ready and none is terminating.
async fn wait_pods_ready(env: &Env, selector: &str, n: usize) {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let start = Instant::now();
    loop {
        let list = pods
            .list(&ListParams::default().labels(selector))
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
    no_helper_pods(env).await;
}

/// No node helper pod (pause, kill) is left in the namespace.
async fn no_helper_pods(env: &Env) {
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
    let qdisc = qdisc_of(&undo);
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

/// A pod's IP.
async fn pod_ip(env: &Env, pod: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let p = pods.get(pod).await.unwrap();
    p.status.unwrap().pod_ip.expect("the pod has an IP")
}

/// The average round trip from `from`'s container to `ip` (busybox `ping`, 4 packets), in
/// milliseconds; `None` when no reply came back.
async fn ping(env: &Env, from: &str, ip: &str) -> Option<f64> {
    let (out, _) = sh(env, from, &format!("ping -c 4 -W 3 {ip}")).await;
    // busybox: "round-trip min/avg/max = 0.061/0.074/0.093 ms"; none without a reply.
    let stats = out
        .lines()
        .find(|l| l.starts_with("round-trip"))?
        .split_once(" = ")?
        .1
        .to_string();
    stats.split('/').nth(1)?.parse().ok()
}

async fn rtt_ms(env: &Env, from: &str, ip: &str) -> f64 {
    ping(env, from, ip)
        .await
        .unwrap_or_else(|| panic!("no reply from {ip} to {from}"))
}

/// Runs `script` with `sh -c` in the container `app` of `pod`: its output and exit status
/// (`None` when it did not answer within 30 s).
async fn sh(env: &Env, pod: &str, script: &str) -> (String, Option<i32>) {
    use tokio::io::AsyncReadExt;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let wrapped = format!("{script}\necho \"rc=$?\"");
    let run = async {
        let ap = AttachParams::default().container("app").stderr(false);
        let mut attached = pods.exec(pod, ["sh", "-c", &wrapped], &ap).await.ok()?;
        let mut out = String::new();
        attached.stdout()?.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    let Some(out) = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .ok()
        .flatten()
    else {
        return (String::new(), None);
    };
    match out.trim_end().rsplit_once("rc=") {
        Some((body, rc)) => (body.to_string(), rc.trim().parse().ok()),
        None => (out, None),
    }
}

/// The command lines of the processes in `pod`'s container (busybox has no `pgrep -f`).
async fn cmdlines(env: &Env, pod: &str) -> String {
    let script = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\"; echo; done 2>/dev/null";
    sh(env, pod, script).await.0
}

/// Waits up to 30 s for `check` to hold.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
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
async fn nfqueue(env: &Env, p: &KubernetesPlatform, t: &Target, peer: &str) {
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
        let qdisc = qdisc_of(&undo);
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

/// The `http` fault on `server` (busybox httpd on 8080), seen from `client` with wget:
/// 503 while injected, the real page after revert; the proxy's counts in the effects, its
/// container and the network helper terminated, no redirect left in the pod.
async fn http(env: &Env, p: &KubernetesPlatform, server: &Target, client: &Target) {
    let (_, rc) = sh(
        env,
        &server.name,
        "mkdir -p /data/www && echo real-page > /data/www/index.html && httpd -p 8080 -h /data/www",
    )
    .await;
    assert_eq!(rc, Some(0), "busybox httpd starts");
    let url = format!("http://{}:8080/index.html", pod_ip(env, &server.name).await);
    let get = format!("wget -q -O - {url} 2>&1");
    eventually("the page is served", || async {
        sh(env, &client.name, &get).await.0.contains("real-page")
    })
    .await;
    let f = fault(json!({"http": {"port": 8080, "abort": {"status": 503}, "duration": "30s"}}));
    assert_eq!(fault::preflight(&f, p).await, Ok(()));
    let undo = fault::prepare(p, &f, server).await.unwrap().unwrap();
    let fault::UndoRecord::RemoveHttpProxy { proxy, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    fault::inject(p, &f, server, Some(&undo)).await.unwrap();
    let nat: Vec<String> = ["iptables", "-w", "-t", "nat", "-S"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rules = p.netns_exec(server, &proxy.access, &nat).await.unwrap();
    assert!(rules.stdout.contains(&proxy.marker), "{rules:?}");
    for _ in 0..3 {
        let (said, _) = sh(env, &client.name, &get).await;
        assert!(
            said.contains("503") && !said.contains("real-page"),
            "{said}"
        );
    }
    let effects = fault::revert_reporting(p, &undo).await.unwrap();
    let counts = effects.and_then(|e| e.http).expect("the proxy's counts");
    assert!(counts.aborted >= 3, "{counts:?}");
    assert!(
        ephemeral_exit(env, &server.name, &proxy.marker)
            .await
            .is_some(),
        "the proxy's container has terminated"
    );
    let NetAccess::Sidecar { helper, .. } = &proxy.access else {
        panic!()
    };
    let helper = helper.split_once('/').unwrap().1;
    assert_eq!(ephemeral_exit(env, &server.name, helper).await, Some(0));
    let (said, _) = sh(env, &client.name, &get).await;
    assert!(said.contains("real-page"), "after revert: {said}");
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
    let file = experiment(env, dir.path(), "e2e-pause", PAUSE_RUN);
    let r = run_passing(env, dir.path(), &file);
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

/// Prepares and injects a network fault.
async fn inject_network(
    p: &KubernetesPlatform,
    t: &Target,
    spec: serde_json::Value,
) -> fault::Undo {
    let f = fault(json!({ "network": spec }));
    let undo = fault::prepare(p, &f, t).await.unwrap().unwrap();
    fault::inject(p, &f, t, Some(&undo)).await.unwrap();
    undo
}

fn qdisc_of(undo: &fault::Undo) -> &fault::network::QdiscRecord {
    match &undo.record {
        fault::UndoRecord::RemoveQdisc { qdisc, .. } => qdisc,
        other => panic!("{other:?}"),
    }
}

/// Runs `argv` in the fault's network helper (the pod's network namespace).
async fn in_helper(
    p: &KubernetesPlatform,
    t: &Target,
    undo: &fault::Undo,
    argv: &[&str],
) -> String {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    let out = p
        .netns_exec(t, &qdisc_of(undo).access, &argv)
        .await
        .unwrap();
    out.stdout
}

/// Reverts a network fault: its helper (and delayer, if any) have ended, and with them
/// everything they held.
async fn revert_network(env: &Env, p: &KubernetesPlatform, t: &Target, undo: &fault::Undo) {
    fault::revert(p, undo).await.unwrap();
    let qdisc = qdisc_of(undo);
    let NetAccess::Sidecar { helper, .. } = &qdisc.access else {
        panic!("{qdisc:?}")
    };
    let helper = helper.split_once('/').unwrap().1;
    assert_eq!(ephemeral_exit(env, &t.name, helper).await, Some(0));
    // `engine: auto` keeps a delayer ready that is never added where netem works; one
    // that was added has ended.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let spec = pods.get(&t.name).await.unwrap().spec.unwrap();
    let added = |name: &str| {
        spec.ephemeral_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
    };
    if let Some(d) = qdisc.delayer.as_ref().filter(|d| added(&d.marker)) {
        assert!(
            ephemeral_exit(env, &t.name, &d.marker).await.is_some(),
            "the delayer still runs"
        );
    }
}

/// Whether the fault is in place in the pod's namespace: faultline's qdisc with `netem`
/// showing `word`, or (nodes without netem) the delayer's NFQUEUE rule.
async fn impaired(p: &KubernetesPlatform, t: &Target, undo: &fault::Undo, word: &str) -> bool {
    let qdisc = in_helper(p, t, undo, &["tc", "qdisc", "show", "dev", "eth0"]).await;
    if qdisc.contains("fa17:") && qdisc.contains("netem") {
        return qdisc.contains(word);
    }
    let rules = in_helper(p, t, undo, &["iptables", "-w", "-S", "OUTPUT"]).await;
    let d = qdisc_of(undo)
        .delayer
        .clone()
        .expect("no netem: the delayer");
    rules.contains(&format!("--comment {} -j NFQUEUE", d.marker))
}

/// loss, rate, jitter, corrupt, duplicate and reorder (`engine: auto`): each in place while
/// injected, gone after revert; 100 % loss measured from the pod.
async fn impairments(env: &Env, p: &KubernetesPlatform, t: &Target) {
    let peer = pod_ip(env, "peer").await;
    assert!(ping(env, &t.name, &peer).await.is_some());
    let undo = inject_network(p, t, json!({"loss": 100, "duration": "30s"})).await;
    assert_eq!(ping(env, &t.name, &peer).await, None, "100 % loss");
    revert_network(env, p, t, &undo).await;
    assert!(ping(env, &t.name, &peer).await.is_some(), "after revert");

    // A rate is tbf, on every kernel.
    let undo = inject_network(p, t, json!({"rate": "1mbit", "duration": "30s"})).await;
    let qdisc = in_helper(p, t, &undo, &["tc", "qdisc", "show", "dev", "eth0"]).await;
    assert!(qdisc.contains("tbf") && qdisc.contains("fa17:"), "{qdisc}");
    revert_network(env, p, t, &undo).await;

    for (spec, word) in [
        (json!({"delay": "50ms", "jitter": "10ms"}), "delay 50ms"),
        (json!({"corrupt": 5}), "corrupt 5%"),
        (json!({"duplicate": 5}), "duplicate 5%"),
        (
            json!({"delay": "50ms", "reorder": {"percent": 25, "gap": 5}}),
            "reorder 25%",
        ),
    ] {
        let mut spec = spec;
        spec["duration"] = json!("30s");
        let undo = inject_network(p, t, spec.clone()).await;
        assert!(impaired(p, t, &undo, word).await, "{spec}");
        revert_network(env, p, t, &undo).await;
    }
    assert!(
        ping(env, &t.name, &peer).await.is_some(),
        "after the reverts"
    );
}

/// A scope on peer pods, a partition, and `hosts`: only the peers named are touched.
async fn scopes(env: &Env, p: &KubernetesPlatform, t: &Target, web_ip: &str) {
    let peer = pod_ip(env, "peer").await;
    // 200 ms to the `peer` pod only (the nfqueue engine: the same on every kernel).
    let undo = inject_network(
        p,
        t,
        json!({"delay": "200ms", "duration": "30s", "engine": "nfqueue",
            "to": {"pods": {"selector": "app=peer"}}}),
    )
    .await;
    assert_eq!(
        qdisc_of(&undo).peers[0].addresses,
        [peer.parse::<std::net::IpAddr>().unwrap()]
    );
    let slow = rtt_ms(env, &t.name, &peer).await;
    assert!(
        slow >= 180.0,
        "round trip to the peer {slow} ms under a 200ms delay"
    );
    let other = rtt_ms(env, &t.name, web_ip).await;
    assert!(other < 100.0, "round trip outside the scope {other} ms");
    revert_network(env, p, t, &undo).await;

    // A partition with the peer: no packet either way; the other pods still answer.
    let undo = inject_network(
        p,
        t,
        json!({"duration": "30s", "partition": {"with": {"pods": {"selector": "app=peer"}}}}),
    )
    .await;
    let t_ip = pod_ip(env, &t.name).await;
    assert_eq!(ping(env, &t.name, &peer).await, None, "target to peer");
    assert_eq!(ping(env, "peer", &t_ip).await, None, "peer to target");
    assert!(
        ping(env, &t.name, web_ip).await.is_some(),
        "target to another pod"
    );
    assert!(
        ping(env, "peer", web_ip).await.is_some(),
        "peer to another pod"
    );
    revert_network(env, p, t, &undo).await;
    assert!(ping(env, &t.name, &peer).await.is_some(), "after revert");

    // `hosts`: `peer` resolved by the pod's own resolver (search domains) to the
    // Service's ClusterIP, journaled, and the rule names exactly that address.
    let services: Api<Service> = Api::namespaced(env.client.clone(), &env.ns);
    let cluster_ip = services
        .get("peer")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip
        .expect("a ClusterIP");
    let undo = inject_network(
        p,
        t,
        json!({"delay": "200ms", "duration": "30s", "engine": "nfqueue", "to": {"hosts": ["peer"]}}),
    )
    .await;
    let peers = &qdisc_of(&undo).peers;
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(
        (peers[0].name.as_str(), peers[0].addresses.clone()),
        ("peer", vec![cluster_ip.parse().unwrap()])
    );
    let rules = in_helper(p, t, &undo, &["iptables", "-w", "-S", "OUTPUT"]).await;
    assert!(rules.contains(&format!("-d {cluster_ip}/32")), "{rules}");
    revert_network(env, p, t, &undo).await;
}

/// dns: answers for the matching name fail as asked, other names resolve; after revert
/// both resolve.
async fn dns(env: &Env, p: &KubernetesPlatform, t: &Target) {
    let name = format!("peer.{}.svc.cluster.local", env.ns);
    let other = "kubernetes.default.svc.cluster.local";
    let resolves = |n: String| async move {
        sh(env, &t.name, &format!("nslookup -type=a {n}"))
            .await
            .0
            .contains("Name:")
    };
    assert!(resolves(name.clone()).await && resolves(other.into()).await);
    let undo = inject_network(
        p,
        t,
        json!({"duration": "30s", "dns": {"names": ["peer.*"], "mode": "nxdomain"}}),
    )
    .await;
    assert!(!resolves(name.clone()).await, "{name} still resolves");
    assert!(resolves(other.into()).await, "{other} no longer resolves");
    revert_network(env, p, t, &undo).await;
    assert!(resolves(name).await, "after revert");
}

/// The faults that exec into the target container itself (what they do is charged to
/// its cgroups): disk_fill, memory_stress, io_stress and a `command` with `where: target`.
async fn in_container(env: &Env, p: &KubernetesPlatform, t: &Target) {
    let exists = |path: String| async move {
        sh(env, &t.name, &format!("test -e '{path}'")).await.1 == Some(0)
    };
    // disk_fill: a file of the size asked, in the pod's emptyDir; gone after revert.
    let f = fault(json!({"disk_fill": {"size": "8MiB", "path": "/data", "duration": "30s"}}));
    let undo = fault::prepare(p, &f, t).await.unwrap().unwrap();
    let fault::UndoRecord::RemoveFile { fill, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    fault::inject(p, &f, t, Some(&undo)).await.unwrap();
    let size = sh(env, &t.name, &format!("stat -c %s '{}'", fill.file)).await;
    assert_eq!(size.0.trim(), "8388608", "{size:?}");
    fault::revert(p, &undo).await.unwrap();
    assert!(!exists(fill.file.clone()).await, "removed at revert");

    // memory_stress: its allocator runs in the target container, and stops at revert.
    let f = fault(json!({"memory_stress": {"size": "16MiB", "ramp": "1s", "duration": "30s"}}));
    let undo = fault::prepare(p, &f, t).await.unwrap().unwrap();
    let fault::UndoRecord::FreeMemory { memory, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    fault::inject(p, &f, t, Some(&undo)).await.unwrap();
    let marker = memory.marker.as_str();
    eventually("the allocator runs", move || async move {
        cmdlines(env, &t.name).await.contains(marker)
    })
    .await;
    fault::revert(p, &undo).await.unwrap();
    eventually("the allocator stops", move || async move {
        !cmdlines(env, &t.name).await.contains(marker)
    })
    .await;

    // io_stress: each worker's file in /data while it runs; files and workers gone after.
    let f = fault(
        json!({"io_stress": {"workers": 1, "size": "4MiB", "path": "/data", "duration": "30s"}}),
    );
    let undo = fault::prepare(p, &f, t).await.unwrap().unwrap();
    let fault::UndoRecord::RemoveIoFiles { io, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    fault::inject(p, &f, t, Some(&undo)).await.unwrap();
    let file = format!("/data/{}", io.files[0].rsplit('/').next().unwrap());
    eventually("the worker's file is written", || exists(file.clone())).await;
    fault::revert(p, &undo).await.unwrap();
    assert!(!exists(file).await, "removed at revert");
    assert!(!cmdlines(env, &t.name).await.contains(&io.marker));

    // command, where: target: run, then its rollback at revert.
    let f = fault(
        json!({"command": {"where": "target", "run": ["touch", "/data/flag"],
        "rollback": ["rm", "/data/flag"], "duration": "30s"}}),
    );
    let undo = fault::prepare(p, &f, t).await.unwrap().unwrap();
    let fx = fault::inject_reporting(p, &f, t, Some(&undo))
        .await
        .unwrap()
        .expect("the command's run");
    assert_eq!(fx.run.unwrap().exit_code, Some(0));
    assert!(exists("/data/flag".into()).await);
    fault::revert(p, &undo).await.unwrap();
    assert!(!exists("/data/flag".into()).await, "rolled back");
}

/// A `kill` with `spec`, once: what it reports it did.
async fn kill_once(
    p: &KubernetesPlatform,
    t: &Target,
    spec: serde_json::Value,
) -> faultline::report::FaultEffects {
    let f = fault(json!({ "kill": spec }));
    fault::inject_reporting(p, &f, t, None)
        .await
        .unwrap()
        .expect("what the kill did")
}

/// kill with `process`: only the matching processes, found in the container through exec;
/// the container and its loop go on.
async fn kill_process(env: &Env, p: &KubernetesPlatform, t: &Target) {
    // The app's loop runs `sleep 1` nearly all the time.
    let fx = kill_once(p, t, json!({"process": "^sleep 1$"})).await;
    assert!(
        !fx.signalled.is_empty() && fx.signalled.iter().all(|s| s.command == "sleep 1"),
        "{:?}",
        fx.signalled
    );
    assert_eq!(
        echo(env, &t.name, Duration::from_secs(20)).await.as_deref(),
        Some("ok\n"),
        "the container runs on"
    );
}

/// kill with `container`: a helper pod on the node signals the container's processes, the
/// kubelet restarts it in the same pod, and the helper is gone.
async fn kill_container(env: &Env, p: &KubernetesPlatform, t: &Target) {
    let fx = kill_once(p, t, json!({"container": "app"})).await;
    let restarts = fx.container_restarts.expect("the restart counts");
    assert_eq!(restarts.container, "app");
    assert!(restarts.after > restarts.before, "{restarts:?}");
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let pod = pods.get(&t.name).await.unwrap();
    assert_eq!(
        pod.metadata.uid.as_deref(),
        Some(t.id.as_str()),
        "the same pod"
    );
    no_helper_pods(env).await;
    wait_ready(env, 3).await;
}

/// The faults that run where faultline runs, beside a Kubernetes target, through `faultline
/// run`: a `command` on the host and an `http_call` to a local server, each rolled back.
async fn cli_host_faults(env: &Env) {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    // The admin API: answers 200 to each request and keeps its request line.
    let server = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let start = Instant::now();
        while lines.len() < 2 && start.elapsed() < Duration::from_secs(120) {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            lines.push(head.lines().next().unwrap_or("").to_string());
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
        lines
    });
    let url = format!("http://127.0.0.1:{port}/maintenance");
    let file = experiment(
        env,
        dir.path(),
        "e2e-host-faults",
        &host_faults(&flag, &url),
    );
    let r = run_passing(env, dir.path(), &file);
    for f in r["faults"].as_array().unwrap() {
        assert_eq!(f["status"], "reverted", "{f}");
    }
    assert!(!flag.exists(), "the host command's rollback ran");
    let lines = tokio::task::block_in_place(|| server.join().unwrap());
    assert_eq!(
        lines,
        ["POST /maintenance HTTP/1.1", "DELETE /maintenance HTTP/1.1"]
    );
}
