//! The Kubernetes driver without a cluster.
//!
//! - Against kube's tower-test mock service: every request faultline makes (method, path,
//!   query, body), answered with real-shaped API objects and errors (403, 404, 409, 422,
//!   503), including pods that vanish mid-fault.
//! - Against a loopback fake API server, for what tower-test cannot carry: exec is a
//!   websocket upgrade (the network fault end to end), and the binary in a fresh process
//!   (`faultline run` from a kubeconfig, `faultline recover` from the journal).
//! - `faultline rbac` for every Kubernetes example, and the `deploy/` manifests.
//!
//! Every request a fault makes is also checked against the rules `faultline rbac` grants
//! for that fault, so the Role can never miss a call the code makes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::os::unix::process::CommandExt;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock;

mod support;

use faultline::experiment::model::{Fault, KubernetesProbe, KubernetesTarget, NetworkStrategy};
use faultline::experiment::units::{Duration as Dur, Signal};
use faultline::fault;
use faultline::platform::kubernetes::{KubernetesPlatform, Timing, rbac};
use faultline::platform::{NetAccess, Platform, PlatformError, Target};

type Handle = mock::Handle<Request<Body>, Response<Body>>;
type Reply = mock::SendResponse<Response<Body>>;

const PODS: &str = "/api/v1/namespaces/shop/pods";

fn timing() -> Timing {
    Timing {
        api: Duration::from_secs(5),
        poll: Duration::from_millis(1),
        start: Duration::from_secs(2),
        stop: Duration::from_secs(2),
        exec: Duration::from_secs(5),
    }
}

fn spec() -> KubernetesTarget {
    KubernetesTarget {
        namespace: "shop".into(),
        selector: Some("app=api,tier!=canary".into()),
        field_selector: Some("status.phase=Running".into()),
        ..Default::default()
    }
}

fn mocked(spec: KubernetesTarget) -> (Arc<KubernetesPlatform>, Handle) {
    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let p = KubernetesPlatform::with_client(client, spec, Some("test".into()))
        .with_tc_image(Some("registry.local/tc:1".into()))
        .with_timing(timing());
    (Arc::new(p), handle)
}

/// One request as the API server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

impl Seen {
    fn pairs(&self) -> Vec<(String, String)> {
        query_pairs(&self.query)
    }

    /// An exec's command line (`command` in the query, in order).
    fn argv(&self) -> Vec<String> {
        self.query_all("command")
    }

    /// An exec's container.
    fn container(&self) -> String {
        self.query_all("container").pop().unwrap_or_default()
    }

    fn query_all(&self, key: &str) -> Vec<String> {
        self.pairs()
            .into_iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect()
    }

    fn line(&self) -> String {
        let q = self.query.trim_start_matches(['?', '&']);
        if q.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            format!("{} {}?{q}", self.method, self.path)
        }
    }

    /// The RBAC rule this request needs.
    fn permission(&self) -> (String, String, String) {
        let parts: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        // api/v1/namespaces/NS/RES[/NAME[/SUB]] or apis/GROUP/VERSION/namespaces/NS/...
        let (group, rest) = if parts[0] == "api" {
            ("".to_string(), &parts[4..])
        } else {
            (parts[1].to_string(), &parts[5..])
        };
        let resource = match rest {
            [r] | [r, _] => r.to_string(),
            [r, _, sub] => format!("{r}/{sub}"),
            _ => panic!("unexpected path {}", self.path),
        };
        let verb = match (self.method.as_str(), rest.len()) {
            ("GET", 1) => "list",
            // Exec is a websocket GET: `faultline rbac` grants both get and create.
            ("GET", 3) if resource == "pods/exec" => "create",
            ("GET", _) => "get",
            ("POST", _) => "create",
            ("DELETE", _) => "delete",
            ("PATCH", _) => "patch",
            (m, _) => panic!("unexpected method {m}"),
        };
        (group, resource, verb.to_string())
    }
}

/// Asserts every request is covered by the rules faultline grants for `perms`.
fn assert_granted(seen: &[Seen], perms: &[rbac::Permission]) {
    let granted: BTreeSet<(String, String, String)> = perms
        .iter()
        .map(|p| {
            (
                p.group.to_string(),
                p.resource.to_string(),
                p.verb.to_string(),
            )
        })
        .collect();
    for s in seen {
        assert!(
            granted.contains(&s.permission()),
            "{} needs {:?}, which `faultline rbac` does not grant ({granted:?})",
            s.line(),
            s.permission()
        );
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn next(h: &mut Handle) -> (Seen, Reply) {
    let (req, reply) = tokio::time::timeout(Duration::from_secs(5), h.next_request())
        .await
        .expect("faultline sends a request within 5s")
        .expect("the client is alive");
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (
        Seen {
            method,
            path,
            query,
            content_type,
            body,
        },
        reply,
    )
}

fn respond(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// Expects `METHOD PATH[?QUERY]` next (query compared decoded, in order) and answers it.
async fn answer(h: &mut Handle, method: &str, path: &str, code: u16, body: Value) -> Seen {
    let (seen, reply) = next(h).await;
    let (want_path, want_query) = path.split_once('?').unwrap_or((path, ""));
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        (method, want_path),
        "unexpected request {}",
        seen.line()
    );
    assert_eq!(
        seen.pairs(),
        query_pairs(want_query),
        "query of {}",
        seen.line()
    );
    reply.send_response(respond(code, &body));
    seen
}

/// Expects the pod `api-1` asked for next and answers it.
async fn answer_pod(h: &mut Handle, code: u16, body: Value) -> Seen {
    answer(h, "GET", &format!("{PODS}/api-1"), code, body).await
}

/// Expects the ephemeral containers of `api-1` patched next and answers.
async fn answer_patch(h: &mut Handle, code: u16, body: Value) -> Seen {
    answer(
        h,
        "PATCH",
        &format!("{PODS}/api-1/ephemeralcontainers"),
        code,
        body,
    )
    .await
}

/// Expects the pause helper asked for next and answers that it is gone (404).
async fn answer_helper_gone(h: &mut Handle) -> Seen {
    answer(h, "GET", HELPER, 404, not_found("faultline-pause-uid-1")).await
}

/// The call ended finding `api-1` gone (deleted, or another pod under its name).
async fn assert_gone<T: std::fmt::Debug + PartialEq>(
    task: tokio::task::JoinHandle<Result<T, PlatformError>>,
) {
    assert_eq!(
        task.await.unwrap(),
        Err(PlatformError::Gone("api-1".into()))
    );
}

fn status(code: u16, reason: &str, message: &str, kind: &str, name: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason,
        "details": {"name": name, "kind": kind}, "code": code
    })
}

fn not_found(name: &str) -> Value {
    status(
        404,
        "NotFound",
        &format!("pods \"{name}\" not found"),
        "pods",
        name,
    )
}

/// A Running, Ready pod of a ReplicaSet, as the API server returns it.
fn pod(name: &str, uid: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "shop", "uid": uid,
            "resourceVersion": "48213", "creationTimestamp": "2026-11-30T11:02:03Z",
            "generateName": "api-7d9f8c6b5-",
            "labels": {"app": "api", "pod-template-hash": "7d9f8c6b5"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "api-7d9f8c6b5", "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "nodeName": "node-2",
            "containers": [
                {"name": "api", "image": "registry.local/api:3.1", "ports": [{"containerPort": 8080, "protocol": "TCP"}]},
                {"name": "envoy", "image": "envoyproxy/envoy:v1.31"}
            ],
            "restartPolicy": "Always", "serviceAccountName": "default"
        },
        "status": {
            "phase": "Running", "hostIP": "10.0.0.12", "podIP": "10.244.2.17", "qosClass": "Burstable",
            "startTime": "2026-11-30T11:02:03Z",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-11-30T11:02:03Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T11:02:09Z"},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-11-30T11:02:09Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-30T11:02:03Z"}
            ],
            "containerStatuses": [
                {"name": "api", "ready": true, "restartCount": 0, "started": true,
                 "image": "registry.local/api:3.1", "imageID": "registry.local/api@sha256:aa",
                 "containerID": format!("containerd://{uid}-api-cid"),
                 "state": {"running": {"startedAt": "2026-11-30T11:02:05Z"}}},
                {"name": "envoy", "ready": true, "restartCount": 0, "started": true,
                 "image": "envoyproxy/envoy:v1.31", "imageID": "envoy@sha256:bb",
                 "containerID": format!("containerd://{uid}-envoy-cid"),
                 "state": {"running": {"startedAt": "2026-11-30T11:02:05Z"}}}
            ]
        }
    })
}

fn pod_list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "48300"}, "items": items})
}

fn target(name: &str, uid: &str) -> Target {
    Target {
        platform: "kubernetes".into(),
        id: uid.into(),
        name: name.into(),
        labels: Default::default(),
    }
}

fn fault(v: Value) -> Fault {
    serde_json::from_value(v).unwrap()
}

// ---------------------------------------------------------------------------------------
// The kubelet's expansion of a container's `command` and `args`: `$(VAR)` is the value of
// a defined variable and stays literal otherwise, `$$` is `$`, `$$(VAR)` is `$(VAR)`. A
// scanner of its own (after kubernetes/third_party/forked/golang/expansion), not
// faultline's, so that a mistake in faultline's escaping cannot hide itself.

/// The environment a container's command is expanded with: the service links the kubelet
/// adds (`enableServiceLinks` is on by default), then the container's own `env`, each
/// value expanded with the ones before it.
fn kubelet_env(container: &Value) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for e in container["env"].as_array().into_iter().flatten() {
        let value = kubelet_expand(e["value"].as_str().unwrap_or(""), &env);
        env.insert(e["name"].as_str().unwrap().to_string(), value);
    }
    env
}

fn kubelet_expand(input: &str, env: &BTreeMap<String, String>) -> String {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' || i + 1 == chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars[i + 1] {
            '$' => {
                out.push('$');
                i += 2;
            }
            '(' => match chars[i + 2..].iter().position(|c| *c == ')') {
                Some(n) => {
                    let name: String = chars[i + 2..i + 2 + n].iter().collect();
                    match env.get(&name) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&format!("$({name})")),
                    }
                    i += 3 + n;
                }
                None => {
                    out.push_str("$(");
                    i += 2;
                }
            },
            c => {
                out.push('$');
                out.push(c);
                i += 2;
            }
        }
    }
    out
}

/// What the container runs: its `command` and `args`, expanded. And the same in any other
/// environment: with every `$(NAME)` its raw command contains defined too (a variable of
/// the pod's, a service link of another Service), what runs must not change. A script
/// that reached the pod spec unescaped fails here as soon as it contains `$(`, even where
/// the container's own environment happens to leave it alone.
fn kubelet_command(container: &Value) -> Vec<String> {
    let raw: Vec<String> = ["command", "args"]
        .iter()
        .flat_map(|k| container[*k].as_array().cloned().unwrap_or_default())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let expand_all = |env: &BTreeMap<String, String>| -> Vec<String> {
        raw.iter().map(|a| kubelet_expand(a, env)).collect()
    };
    let env = kubelet_env(container);
    let ran = expand_all(&env);
    let mut hostile = env.clone();
    for a in &raw {
        for (i, _) in a.match_indices("$(") {
            if let Some(end) = a[i + 2..].find(')') {
                let name = &a[i + 2..i + 2 + end];
                hostile.insert(name.to_string(), format!("<{name} was expanded>"));
            }
        }
    }
    assert_eq!(
        expand_all(&hostile),
        ran,
        "the command of `{}` depends on its environment: not escaped for the kubelet",
        container["name"]
    );
    ran
}

#[test]
fn the_kubelet_model_expands_as_documented() {
    let env = kubelet_env(&json!({"env": [{"name": "A", "value": "x"}]}));
    for (input, want) in [
        ("$(A)", "x"),
        ("$(B)", "$(B)"),
        ("$$(A)", "$(A)"),
        ("echo $$", "echo $"),
        ("$((n+1))", "$((n+1))"),
        ("$(A", "$(A"),
        ("a$", "a$"),
        ("$!", "$!"),
        ("$(KUBERNETES_SERVICE_HOST)", "10.96.0.1"),
    ] {
        assert_eq!(kubelet_expand(input, &env), want, "{input}");
    }
}

// ---------------------------------------------------------------------------------------
// Discovery

#[tokio::test]
async fn discover_sends_both_selectors_and_keeps_only_eligible_pods() {
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.discover().await });
    let mut protected = pod("api-2", "uid-2");
    protected["metadata"]["labels"]["faultline.protected"] = json!("true");
    let mut pending = pod("api-3", "uid-3");
    pending["status"]["phase"] = json!("Pending");
    let mut deleting = pod("api-4", "uid-4");
    deleting["metadata"]["deletionTimestamp"] = json!("2026-11-30T12:00:00Z");
    let mut helper = pod("faultline-pause-uid-1", "uid-5");
    helper["metadata"]["labels"]["faultline.helper"] = json!("pause");
    let mut done = pod("api-6", "uid-6");
    done["status"]["phase"] = json!("Succeeded");
    let seen = answer(
        &mut h,
        "GET",
        &format!(
            "{PODS}?fieldSelector=status.phase%3DRunning&labelSelector=app%3Dapi%2Ctier%21%3Dcanary"
        ),
        200,
        pod_list(vec![
            pod("api-1", "uid-1"),
            protected,
            pending,
            deleting,
            helper,
            done,
        ]),
    )
    .await;
    assert_eq!(
        seen.pairs(),
        vec![
            (
                "fieldSelector".to_string(),
                "status.phase=Running".to_string()
            ),
            (
                "labelSelector".to_string(),
                "app=api,tier!=canary".to_string()
            ),
        ]
    );
    let targets = task.await.unwrap().unwrap();
    assert_eq!(targets.len(), 1, "{targets:?}");
    let t = &targets[0];
    assert_eq!(
        (t.platform.as_str(), t.id.as_str(), t.name.as_str()),
        ("kubernetes", "uid-1", "api-1")
    );
    assert_eq!(t.labels.get("app").map(String::as_str), Some("api"));
    assert_granted(&[seen], &rbac::for_targets());
}

#[tokio::test]
async fn discover_without_selectors_lists_the_namespace() {
    let (p, mut h) = mocked(KubernetesTarget {
        namespace: "shop".into(),
        ..Default::default()
    });
    let task = tokio::spawn(async move { p.discover().await });
    answer(&mut h, "GET", PODS, 200, pod_list(vec![])).await;
    assert_eq!(task.await.unwrap().unwrap(), vec![]);
}

#[tokio::test]
async fn discover_forbidden_names_the_missing_permission() {
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.discover().await });
    let (_, reply) = next(&mut h).await;
    reply.send_response(respond(
        403,
        &status(
            403,
            "Forbidden",
            "pods is forbidden: User \"system:serviceaccount:chaos:faultline\" cannot list resource \"pods\" in API group \"\" in the namespace \"shop\"",
            "pods",
            "",
        ),
    ));
    assert_eq!(
        task.await.unwrap(),
        Err(PlatformError::Refused(
            "forbidden: cannot `list` `pods` in namespace `shop` as `system:serviceaccount:chaos:faultline` — grant it (see `faultline rbac FILE`)".into()
        ))
    );
}

#[tokio::test]
async fn server_errors_are_unavailable_so_reverts_retry() {
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.discover().await });
    let (_, reply) = next(&mut h).await;
    reply.send_response(respond(
        503,
        &status(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            "",
            "",
        ),
    ));
    assert_eq!(
        task.await.unwrap(),
        Err(PlatformError::Unavailable(
            "the Kubernetes API (context `test`) answered 503: the server is currently unable to handle the request".into()
        ))
    );
}

// ---------------------------------------------------------------------------------------
// kill

#[tokio::test]
async fn kill_force_deletes_by_default_with_the_uid_as_precondition() {
    let (p, mut h) = mocked(spec());
    let t = target("api-1", "uid-1");
    let task = tokio::spawn({
        let t = t.clone();
        async move { p.signal(&t, Signal::KILL, None).await }
    });
    let mut deleted = pod("api-1", "uid-1");
    deleted["metadata"]["deletionTimestamp"] = json!("2026-11-30T12:00:00Z");
    let seen = answer(
        &mut h,
        "DELETE",
        &format!("{PODS}/api-1?gracePeriodSeconds=0"),
        200,
        deleted,
    )
    .await;
    assert_eq!(
        seen.body,
        json!({"gracePeriodSeconds": 0, "preconditions": {"uid": "uid-1"}})
    );
    assert_eq!(seen.content_type, "application/json");
    assert_eq!(task.await.unwrap(), Ok(()));
    let kill = fault(json!({"kill": {}}));
    assert_granted(&[seen], &fault::rbac_rules(&kill));
}

#[tokio::test]
async fn kill_takes_the_grace_period_rounded_up_to_seconds() {
    for (grace, secs) in [(30_000, 30), (1_500, 2), (0, 0)] {
        let (p, mut h) = mocked(spec());
        let task = tokio::spawn(async move {
            p.signal(
                &target("api-1", "uid-1"),
                Signal::KILL,
                Some(Dur::from_millis(grace)),
            )
            .await
        });
        let seen = answer(
            &mut h,
            "DELETE",
            &format!("{PODS}/api-1?gracePeriodSeconds={secs}"),
            200,
            pod("api-1", "uid-1"),
        )
        .await;
        assert_eq!(seen.body["gracePeriodSeconds"], json!(secs));
        assert_eq!(task.await.unwrap(), Ok(()));
    }
}

#[tokio::test]
async fn kill_of_a_vanished_or_replaced_pod_is_gone() {
    // 404: deleted by someone else.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move {
        p.signal(&target("api-1", "uid-1"), Signal::KILL, None)
            .await
    });
    let (_, reply) = next(&mut h).await;
    reply.send_response(respond(404, &not_found("api-1")));
    assert_gone(task).await;

    // 409: a StatefulSet recreated `api-1` with another UID; it is not the target.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move {
        p.signal(&target("api-1", "uid-1"), Signal::KILL, None)
            .await
    });
    let (_, reply) = next(&mut h).await;
    reply.send_response(respond(
        409,
        &status(
            409,
            "Conflict",
            "Operation cannot be fulfilled on Pod \"api-1\": Precondition failed: UID in precondition: uid-1, UID in object meta: uid-9",
            "Pod",
            "api-1",
        ),
    ));
    assert_gone(task).await;
}

/// Recovery after a kill is timed from when the killed pods are gone, not from the DELETE.
#[tokio::test]
async fn wait_gone_returns_once_every_killed_pod_has_left_the_api() {
    let (p, mut h) = mocked(spec());
    let killed = vec![target("api-1", "uid-1"), target("db-0", "uid-db0")];
    let task = tokio::spawn({
        let (p, killed) = (p.clone(), killed.clone());
        async move { p.wait_gone(&killed, Duration::from_secs(2)).await }
    });
    let mut seen = Vec::new();
    // Deleted with a grace period: Terminating for a while, then gone.
    let mut terminating = pod("api-1", "uid-1");
    terminating["metadata"]["deletionTimestamp"] = json!("2026-11-30T12:00:05Z");
    terminating["metadata"]["deletionGracePeriodSeconds"] = json!(5);
    for _ in 0..2 {
        seen.push(answer_pod(&mut h, 200, terminating.clone()).await);
    }
    seen.push(answer_pod(&mut h, 404, not_found("api-1")).await);
    // A StatefulSet's pod: its name is back at once, under another UID.
    seen.push(
        answer(
            &mut h,
            "GET",
            &format!("{PODS}/db-0"),
            200,
            pod("db-0", "uid-db0-new"),
        )
        .await,
    );
    let waited = task.await.unwrap().unwrap();
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert_granted(&seen, &[rbac::GET_PODS]);

    // A pod that never goes: the wait ends with its name.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn({
        let p = p.clone();
        async move {
            p.wait_gone(&[target("api-1", "uid-1")], Duration::from_millis(50))
                .await
        }
    });
    let reply = async {
        loop {
            let (seen, reply) = next(&mut h).await;
            assert_eq!(seen.line(), format!("GET {PODS}/api-1"));
            reply.send_response(respond(200, &terminating));
        }
    };
    let err = tokio::select! {
        r = task => r.unwrap().unwrap_err(),
        _ = reply => unreachable!(),
    };
    assert_eq!(
        err,
        PlatformError::Unavailable(
            "pod `api-1` is still terminating 50ms after it was deleted".into()
        )
    );
}

#[tokio::test]
async fn kill_forbidden_says_which_verb_to_grant() {
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move {
        p.signal(&target("api-1", "uid-1"), Signal::KILL, None)
            .await
    });
    let (_, reply) = next(&mut h).await;
    reply.send_response(respond(
        403,
        &status(
            403,
            "Forbidden",
            "pods \"api-1\" is forbidden: User \"system:serviceaccount:chaos:faultline\" cannot delete resource \"pods\" in API group \"\" in the namespace \"shop\"",
            "pods",
            "api-1",
        ),
    ));
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "forbidden: cannot `delete` `pods` in namespace `shop` as `system:serviceaccount:chaos:faultline` — grant it (see `faultline rbac FILE`)"
    );
}

// ---------------------------------------------------------------------------------------
// kill one container of a pod

const KILL_HELPER: &str = "/api/v1/namespaces/shop/pods/faultline-kill-uid-1-envoy";

/// The kill helper's status as the kubelet reports it: running, or ended with `code` and
/// its termination message.
fn kill_helper_state(mut helper: Value, ended: Option<(i32, &str)>) -> Value {
    let (phase, state) = match ended {
        None => (
            "Running",
            json!({"running": {"startedAt": "2026-11-30T12:00:01Z"}}),
        ),
        Some((code, message)) => (
            if code == 0 { "Succeeded" } else { "Failed" },
            json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                "message": message, "startedAt": "2026-11-30T12:00:01Z", "finishedAt": "2026-11-30T12:00:02Z"}}),
        ),
    };
    helper["status"] = json!({
        "phase": phase,
        "containerStatuses": [{"name": "signaller", "ready": false, "restartCount": 0,
            "image": "registry.local/tc:1", "imageID": "", "state": state}]
    });
    helper
}

/// The target pod with its `envoy` container restarted `n` times.
fn envoy_restarted(n: i32) -> Value {
    let mut p = pod("api-1", "uid-1");
    p["status"]["containerStatuses"][1]["restartCount"] = json!(n);
    p
}

#[tokio::test]
async fn kill_of_one_container_signals_it_from_a_helper_on_its_node_and_reports_the_restart() {
    let (p, mut h) = mocked(spec());
    let t = target("api-1", "uid-1");
    let kill = fault(json!({"kill": {"container": "envoy"}}));
    let mut seen = Vec::new();
    let task = tokio::spawn({
        let (p, t, kill) = (p.clone(), t.clone(), kill.clone());
        async move { fault::inject_reporting(p.as_ref(), &kill, &t, None).await }
    });
    seen.push(answer_pod(&mut h, 200, envoy_restarted(2)).await);
    let (created, reply) = next(&mut h).await;
    assert_eq!(created.line(), format!("POST {PODS}"));
    let helper = created.body.clone();
    reply.send_response(respond(201, &helper));
    seen.push(created);
    seen.push(
        answer(
            &mut h,
            "GET",
            KILL_HELPER,
            200,
            kill_helper_state(helper.clone(), None),
        )
        .await,
    );
    let said = "signalled 1 process(es) of /host/cgroup/kubepods/pod1/uid-1-envoy-cid";
    seen.push(
        answer(
            &mut h,
            "GET",
            KILL_HELPER,
            200,
            kill_helper_state(helper.clone(), Some((0, said))),
        )
        .await,
    );
    // The helper is removed once it has ended.
    seen.push(
        answer(
            &mut h,
            "DELETE",
            &format!("{KILL_HELPER}?gracePeriodSeconds=15"),
            200,
            helper.clone(),
        )
        .await,
    );
    seen.push(
        answer(
            &mut h,
            "GET",
            KILL_HELPER,
            404,
            not_found("faultline-kill-uid-1-envoy"),
        )
        .await,
    );
    // The kubelet has not restarted it yet, then has.
    seen.push(answer_pod(&mut h, 200, envoy_restarted(2)).await);
    seen.push(answer_pod(&mut h, 200, envoy_restarted(3)).await);
    let effects = task.await.unwrap().unwrap().expect("effects");
    let restarts = effects
        .container_restarts
        .clone()
        .expect("container_restarts");
    assert_eq!(
        (restarts.container.as_str(), restarts.before, restarts.after),
        ("envoy", 2, 3)
    );
    assert_eq!(
        effects.summary(),
        "container `envoy` was restarted (restart count 2 -> 3)"
    );

    // The helper: on the target's node, in the node's PID namespace, privileged, the
    // container's ID and the signal's number; owned by the target pod.
    assert_eq!(helper["metadata"]["name"], "faultline-kill-uid-1-envoy");
    assert_eq!(helper["metadata"]["labels"]["faultline.helper"], "kill");
    assert_eq!(
        helper["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Pod", "name": "api-1", "uid": "uid-1"}])
    );
    let spec = &helper["spec"];
    assert_eq!(spec["nodeName"], "node-2");
    assert_eq!(spec["hostPID"], true);
    assert_eq!(spec["restartPolicy"], "Never");
    let c = &spec["containers"][0];
    assert_eq!(c["image"], "registry.local/tc:1");
    assert_eq!(c["securityContext"]["privileged"], true);
    // The script the container runs, after the kubelet's expansion of `$(...)` and `$$`,
    // is faultline's.
    assert_eq!(
        kubelet_command(c),
        ["sh", "-c", faultline::platform::kubernetes::signal::SCRIPT]
    );
    let env = kubelet_env(c);
    assert_eq!(env["FAULTLINE_CONTAINER_ID"], "uid-1-envoy-cid");
    assert_eq!(env["FAULTLINE_SIGNAL"], "9");
    assert_eq!(env["FAULTLINE_NODE"], "node-2");
    assert_eq!(spec["volumes"][0]["hostPath"]["path"], "/sys/fs/cgroup");
    assert_granted(&seen, &fault::rbac_rules(&kill));
    // Exactly the extra rules: a helper pod's create, get and delete; no pod delete of
    // the target beyond that.
    let rules: Vec<(&str, &str)> = fault::rbac_rules(&kill)
        .iter()
        .map(|p| (p.resource, p.verb))
        .collect();
    assert_eq!(
        rules,
        [("pods", "get"), ("pods", "create"), ("pods", "delete")]
    );
}

#[tokio::test]
async fn kill_of_one_container_says_why_it_could_not() {
    // A container the pod does not have: refused before any helper, naming those it has.
    let (p, mut h) = mocked(spec());
    let t = target("api-1", "uid-1");
    let kill = fault(json!({"kill": {"container": "sidecar"}}));
    let task = tokio::spawn({
        let (p, t, kill) = (p.clone(), t.clone(), kill.clone());
        async move { fault::inject_reporting(p.as_ref(), &kill, &t, None).await }
    });
    answer_pod(&mut h, 200, pod("api-1", "uid-1")).await;
    assert_eq!(
        task.await.unwrap(),
        Err(PlatformError::Refused(
            "pod `api-1` has no container `sidecar` (it has: api, envoy)".into()
        ))
    );

    // The helper finds no cgroup: its message, and the helper is removed.
    let kill = fault(json!({"kill": {"container": "envoy", "signal": "SIGTERM"}}));
    let task = tokio::spawn({
        let (p, t, kill) = (p.clone(), t.clone(), kill.clone());
        async move { fault::inject_reporting(p.as_ref(), &kill, &t, None).await }
    });
    answer_pod(&mut h, 200, pod("api-1", "uid-1")).await;
    let (created, reply) = next(&mut h).await;
    let helper = created.body.clone();
    assert_eq!(
        kubelet_env(&helper["spec"]["containers"][0])["FAULTLINE_SIGNAL"],
        "15"
    );
    reply.send_response(respond(201, &helper));
    let why = "container uid-1-envoy-cid has no cgroup on node node-2";
    answer(
        &mut h,
        "GET",
        KILL_HELPER,
        200,
        kill_helper_state(helper.clone(), Some((1, why))),
    )
    .await;
    answer(
        &mut h,
        "DELETE",
        &format!("{KILL_HELPER}?gracePeriodSeconds=15"),
        200,
        helper.clone(),
    )
    .await;
    answer(
        &mut h,
        "GET",
        KILL_HELPER,
        404,
        not_found("faultline-kill-uid-1-envoy"),
    )
    .await;
    assert_eq!(
        task.await.unwrap(),
        Err(PlatformError::Refused(format!(
            "cannot signal container `envoy` of pod `api-1`: {why}"
        )))
    );
}

// pause

fn helper_state(mut helper: Value, ready: bool, state: Value) -> Value {
    helper["status"] = json!({
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        "containerStatuses": [{"name": "freezer", "ready": ready, "restartCount": 0,
            "image": "registry.local/tc:1", "imageID": "", "state": state}]
    });
    helper
}

const HELPER: &str = "/api/v1/namespaces/shop/pods/faultline-pause-uid-1";

#[tokio::test]
async fn pause_freezes_through_a_helper_pod_on_the_node_and_unpause_deletes_it() {
    let (p, mut h) = mocked(KubernetesTarget {
        container: Some("api".into()),
        ..spec()
    });
    let t = target("api-1", "uid-1");
    let pause = fault(json!({"pause": {"duration": "20s"}}));
    let mut seen = Vec::new();

    // inject: the helper, with no lookup before it (a helper already there conflicts).
    let task = tokio::spawn({
        let (p, t, pause) = (p.clone(), t.clone(), pause.clone());
        async move {
            let undo = fault::prepare(p.as_ref(), &pause, &t).await?;
            fault::inject(p.as_ref(), &pause, &t, undo.as_ref()).await
        }
    });
    seen.push(answer_pod(&mut h, 200, pod("api-1", "uid-1")).await);
    let (created, reply) = next(&mut h).await;
    assert_eq!(created.line(), format!("POST {PODS}"));
    let helper = created.body.clone();
    reply.send_response(respond(201, &helper));
    seen.push(created);
    let starting = helper_state(
        helper.clone(),
        false,
        json!({"waiting": {"reason": "ContainerCreating"}}),
    );
    seen.push(answer(&mut h, "GET", HELPER, 200, starting).await);
    let running = json!({"running": {"startedAt": "2026-11-30T12:00:01Z"}});
    seen.push(
        answer(
            &mut h,
            "GET",
            HELPER,
            200,
            helper_state(helper.clone(), false, running.clone()),
        )
        .await,
    );
    seen.push(
        answer(
            &mut h,
            "GET",
            HELPER,
            200,
            helper_state(helper.clone(), true, running.clone()),
        )
        .await,
    );
    assert_eq!(task.await.unwrap(), Ok(()));

    // The helper pod: on the target's node, the target container's ID, privileged,
    // the node's cgroup tree, labelled as faultline's, lifetime = duration + 60s.
    assert_eq!(helper["metadata"]["name"], "faultline-pause-uid-1");
    assert_eq!(helper["metadata"]["namespace"], "shop");
    assert_eq!(helper["metadata"]["labels"]["faultline.helper"], "pause");
    assert_eq!(helper["metadata"]["labels"]["faultline.target"], "uid-1");
    assert_eq!(
        helper["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Pod", "name": "api-1", "uid": "uid-1"}])
    );
    let spec = &helper["spec"];
    assert_eq!(spec["nodeName"], "node-2");
    assert_eq!(spec["hostPID"], true);
    assert_eq!(spec["restartPolicy"], "Never");
    assert_eq!(spec["activeDeadlineSeconds"], 110);
    let c = &spec["containers"][0];
    assert_eq!(c["image"], "registry.local/tc:1");
    assert_eq!(c["securityContext"]["privileged"], true);
    // The script the container runs, after the kubelet's expansion, is faultline's.
    assert_eq!(
        kubelet_command(c),
        ["sh", "-c", faultline::platform::kubernetes::pause::SCRIPT]
    );
    let env: BTreeMap<String, String> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(env["FAULTLINE_CONTAINER_ID"], "uid-1-api-cid");
    assert_eq!(env["FAULTLINE_LIFETIME"], "80");
    assert_eq!(env["FAULTLINE_NODE"], "node-2");
    // Kubernetes expands an exec probe's command as a container's.
    let probe = kubelet_command(&json!({
        "name": "readiness probe", "env": c["env"],
        "command": c["readinessProbe"]["exec"]["command"]
    }));
    assert_eq!(probe, ["sh", "-c", "[ -e /tmp/faultline-frozen ]"]);
    assert_eq!(spec["volumes"][0]["hostPath"]["path"], "/sys/fs/cgroup");

    // revert: delete the helper (its trap thaws) and wait until it is gone.
    let task = tokio::spawn({
        let (p, t) = (p.clone(), t.clone());
        async move {
            fault::revert(
                p.as_ref(),
                &fault::Undo::new(fault::UndoRecord::Unpause { target: t }),
            )
            .await
        }
    });
    let del = answer(
        &mut h,
        "DELETE",
        &format!("{HELPER}?gracePeriodSeconds=15"),
        200,
        helper.clone(),
    )
    .await;
    assert_eq!(del.body, json!({"gracePeriodSeconds": 15}));
    seen.push(del);
    let mut terminating = helper_state(helper.clone(), true, running);
    terminating["metadata"]["deletionTimestamp"] = json!("2026-11-30T12:00:30Z");
    seen.push(answer(&mut h, "GET", HELPER, 200, terminating).await);
    // Gone is thawed: the helper's trap ran before its pod went away.
    seen.push(answer_helper_gone(&mut h).await);
    assert_eq!(task.await.unwrap(), Ok(()));
    assert_granted(&seen, &fault::rbac_rules(&pause));
}

/// Runs `pause_for` up to the helper's creation and returns the created helper.
async fn start_pause(h: &mut Handle) -> Value {
    answer_pod(h, 200, pod("api-1", "uid-1")).await;
    let (created, reply) = next(h).await;
    assert_eq!(created.line(), format!("POST {PODS}"));
    reply.send_response(respond(201, &created.body));
    created.body
}

async fn expect_helper_removed(h: &mut Handle) {
    answer(
        h,
        "DELETE",
        &format!("{HELPER}?gracePeriodSeconds=15"),
        200,
        json!({}),
    )
    .await;
    answer_helper_gone(h).await;
}

#[tokio::test]
async fn pause_reports_why_the_helper_failed_and_removes_it() {
    let life = Duration::from_secs(30);
    // The script's own message, from the termination message.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.freeze(&target("api-1", "uid-1"), life).await });
    let helper = start_pause(&mut h).await;
    let ended = json!({"terminated": {"exitCode": 1, "reason": "Error",
        "message": "container uid-1-api-cid has no cgroup on node node-2 (searched /sys/fs/cgroup and /proc/*/cgroup)\n"}});
    answer(
        &mut h,
        "GET",
        HELPER,
        200,
        helper_state(helper, false, ended),
    )
    .await;
    expect_helper_removed(&mut h).await;
    assert_eq!(
        task.await.unwrap(),
        Err(PlatformError::Refused(
            "cannot freeze container `api` of pod `api-1`: container uid-1-api-cid has no cgroup on node node-2 (searched /sys/fs/cgroup and /proc/*/cgroup)".into()
        ))
    );

    // An image the node cannot pull.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.freeze(&target("api-1", "uid-1"), life).await });
    let helper = start_pause(&mut h).await;
    let waiting = json!({"waiting": {"reason": "ImagePullBackOff",
        "message": "Back-off pulling image \"registry.local/tc:1\""}});
    answer(
        &mut h,
        "GET",
        HELPER,
        200,
        helper_state(helper, false, waiting),
    )
    .await;
    expect_helper_removed(&mut h).await;
    let err = task.await.unwrap().unwrap_err().to_string();
    assert!(
        err.starts_with("the pause helper cannot start: ImagePullBackOff: Back-off pulling image"),
        "{err}"
    );

    // Never ready within the start timeout.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.freeze(&target("api-1", "uid-1"), life).await });
    let helper = start_pause(&mut h).await;
    let starting = helper_state(
        helper,
        false,
        json!({"waiting": {"reason": "ContainerCreating"}}),
    );
    let err = loop {
        let (s, reply) = next(&mut h).await;
        if s.method == "DELETE" {
            reply.send_response(respond(200, &json!({})));
            answer(&mut h, "GET", HELPER, 404, not_found("x")).await;
            break task.await.unwrap().unwrap_err().to_string();
        }
        reply.send_response(respond(200, &starting));
    };
    assert_eq!(
        err,
        "the pause helper `faultline-pause-uid-1` did not report container `api` of pod `api-1` frozen within 2s (it is ContainerCreating)"
    );
}

#[tokio::test]
async fn pause_refusals_from_the_api() {
    let life = Duration::from_secs(30);
    // Pod Security admission refuses the privileged helper.
    let msg = "pods \"faultline-pause-uid-1\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces (hostPID=true), hostPath volumes (volume \"cgroup\"), privileged (container \"freezer\" must not set securityContext.privileged=true)";
    let refused = freeze_answered(
        403,
        status(403, "Forbidden", msg, "pods", "faultline-pause-uid-1"),
    )
    .await;
    let err = refused.unwrap_err().to_string();
    assert!(
        err.starts_with(
            "namespace `shop` enforces Pod Security and refused faultline's helper: pods"
        ),
        "{err}"
    );
    assert!(
        err.contains("pod-security.kubernetes.io/enforce=privileged"),
        "{err}"
    );

    // The namespace is gone.
    let refused = freeze_answered(
        404,
        status(
            404,
            "NotFound",
            "namespaces \"shop\" not found",
            "namespaces",
            "shop",
        ),
    )
    .await;
    assert_eq!(
        refused,
        Err(PlatformError::Refused(
            "namespace `shop` does not exist (context `test`)".into()
        ))
    );

    // 409: a running helper of an earlier run is still there.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.freeze(&target("api-1", "uid-1"), life).await });
    let helper = start_pause_conflict(&mut h).await;
    let running = json!({"running": {"startedAt": "2026-11-30T12:00:01Z"}});
    answer(
        &mut h,
        "GET",
        HELPER,
        200,
        helper_state(helper, true, running),
    )
    .await;
    assert_eq!(
        task.await.unwrap(),
        Err(PlatformError::Refused(
            "pod `api-1` already has a pause helper `faultline-pause-uid-1`, left by an earlier run: run `faultline recover`".into()
        ))
    );

    // 409 with an ended helper: it is replaced.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.freeze(&target("api-1", "uid-1"), life).await });
    let helper = start_pause_conflict(&mut h).await;
    let mut ended = helper_state(
        helper.clone(),
        false,
        json!({"terminated": {"exitCode": 0, "reason": "Completed"}}),
    );
    ended["status"]["phase"] = json!("Succeeded");
    answer(&mut h, "GET", HELPER, 200, ended).await;
    expect_helper_removed(&mut h).await;
    answer(&mut h, "POST", PODS, 201, helper.clone()).await;
    let running = json!({"running": {"startedAt": "2026-11-30T12:00:01Z"}});
    answer(
        &mut h,
        "GET",
        HELPER,
        200,
        helper_state(helper, true, running),
    )
    .await;
    assert_eq!(task.await.unwrap(), Ok(()));

    // 422: the API server rejects the spec.
    let msg = "Pod \"faultline-pause-uid-1\" is invalid: spec.containers[0].resources.limits: Invalid value: \"32Mi\": must be greater than or equal to memory request";
    let refused = freeze_answered(
        422,
        status(422, "Invalid", msg, "Pod", "faultline-pause-uid-1"),
    )
    .await;
    assert_eq!(
        refused,
        Err(PlatformError::Refused(format!(
            "the Kubernetes API refused to create pods: {msg}"
        )))
    );
}

/// A pause whose helper pod the API server answers with `code` and `status`: the result.
async fn freeze_answered(code: u16, status: Value) -> Result<(), PlatformError> {
    let (p, mut h) = mocked(spec());
    let life = Duration::from_secs(30);
    let task = tokio::spawn(async move { p.freeze(&target("api-1", "uid-1"), life).await });
    answer_pod(&mut h, 200, pod("api-1", "uid-1")).await;
    answer(&mut h, "POST", PODS, code, status).await;
    task.await.unwrap()
}

async fn start_pause_conflict(h: &mut Handle) -> Value {
    answer_pod(h, 200, pod("api-1", "uid-1")).await;
    let (created, reply) = next(h).await;
    reply.send_response(respond(
        409,
        &status(
            409,
            "AlreadyExists",
            "pods \"faultline-pause-uid-1\" already exists",
            "pods",
            "faultline-pause-uid-1",
        ),
    ));
    created.body
}

#[tokio::test]
async fn pause_of_a_pod_that_vanished_or_cannot_be_frozen() {
    let life = Duration::from_secs(30);
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.freeze(&target("api-1", "uid-1"), life).await });
    answer_pod(&mut h, 404, not_found("api-1")).await;
    assert_gone(task).await;

    // Same name, another pod.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.freeze(&target("api-1", "uid-1"), life).await });
    answer_pod(&mut h, 200, pod("api-1", "uid-9")).await;
    assert_gone(task).await;

    // A container the pod does not have.
    let (p, mut h) = mocked(KubernetesTarget {
        container: Some("worker".into()),
        ..spec()
    });
    let task = tokio::spawn(async move { p.freeze(&target("api-1", "uid-1"), life).await });
    answer_pod(&mut h, 200, pod("api-1", "uid-1")).await;
    assert_eq!(
        task.await.unwrap(),
        Err(PlatformError::Refused(
            "pod `api-1` has no container `worker` (it has: api, envoy)".into()
        ))
    );

    // The container is restarting.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.freeze(&target("api-1", "uid-1"), life).await });
    let mut crashing = pod("api-1", "uid-1");
    crashing["status"]["containerStatuses"][0]["state"] =
        json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}});
    answer_pod(&mut h, 200, crashing).await;
    assert_eq!(
        task.await.unwrap(),
        Err(PlatformError::Refused(
            "container `api` of pod `api-1` is not running".into()
        ))
    );

    // unpause of a helper that is already gone is done at once.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(async move { p.thaw(&target("api-1", "uid-1")).await });
    answer(
        &mut h,
        "DELETE",
        &format!("{HELPER}?gracePeriodSeconds=15"),
        404,
        not_found("faultline-pause-uid-1"),
    )
    .await;
    assert_eq!(task.await.unwrap(), Ok(()));
}

#[tokio::test]
async fn pause_needs_a_helper_image() {
    let (svc, mut h) = mock::pair::<Request<Body>, Response<Body>>();
    let p = KubernetesPlatform::with_client(kube::Client::new(svc, "default"), spec(), None)
        .with_timing(timing());
    let task = tokio::spawn(async move {
        p.freeze(&target("api-1", "uid-1"), Duration::from_secs(9))
            .await
    });
    answer_pod(&mut h, 200, pod("api-1", "uid-1")).await;
    let err = task.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("--tc-image or FAULTLINE_TC_IMAGE"), "{err}");
}

// ---------------------------------------------------------------------------------------
// network: the ephemeral container

fn with_ephemeral(mut pod: Value, name: &str, state: Value) -> Value {
    pod["spec"]["ephemeralContainers"] = json!([{"name": name, "image": "registry.local/tc:1"}]);
    pod["status"]["ephemeralContainerStatuses"] = json!([{
        "name": name, "ready": false, "restartCount": 0, "image": "registry.local/tc:1",
        "imageID": "", "state": state
    }]);
    pod
}

#[tokio::test]
async fn network_access_patches_an_ephemeral_container_and_waits_until_it_runs() {
    let (p, mut h) = mocked(spec());
    let t = target("api-1", "uid-1");
    let task = tokio::spawn({
        let (p, t) = (p.clone(), t.clone());
        async move {
            p.enter_netns(
                &t,
                &netns(
                    NetworkStrategy::Auto,
                    Some("registry.local/tc:2"),
                    Duration::from_secs(70),
                ),
            )
            .await
        }
    });
    let (patch, reply) = next(&mut h).await;
    assert_eq!(
        patch.line(),
        format!("PATCH {PODS}/api-1/ephemeralcontainers")
    );
    assert_eq!(patch.content_type, "application/strategic-merge-patch+json");
    let name = ephemeral_name(&patch.body);
    assert!(name.starts_with("faultline-net-"), "{name}");
    // What the container runs is the command after the kubelet's expansion: `$$` must
    // reach the shell as `$$` (its PID), not `$`.
    let mut body = patch.body.clone();
    let container = body["spec"]["ephemeralContainers"][0].take();
    assert_eq!(
        kubelet_command(&container),
        [
            "sh",
            "-c",
            "trap 'tc qdisc del dev eth0 root handle fa17: 2>/dev/null; exit 0' TERM INT; echo $$ > /tmp/faultline-net.pid || exit 1; sleep 70 & wait $!; tc qdisc del dev eth0 root handle fa17: 2>/dev/null; exit 0"
        ]
    );
    let mut container = container;
    container.as_object_mut().unwrap().remove("command");
    body["spec"]["ephemeralContainers"][0] = container;
    assert_eq!(
        body,
        json!({
            "metadata": {"uid": "uid-1"},
            "spec": {"ephemeralContainers": [{
                "name": name,
                "image": "registry.local/tc:2",
                "imagePullPolicy": "IfNotPresent",
                "stdin": false,
                "tty": false,
                "securityContext": {"runAsUser": 0, "runAsNonRoot": false, "capabilities": {"add": ["NET_ADMIN"]}}
            }]}
        })
    );
    let creating = with_ephemeral(
        pod("api-1", "uid-1"),
        &name,
        json!({"waiting": {"reason": "ContainerCreating"}}),
    );
    reply.send_response(respond(200, &creating));
    let mut seen = vec![patch];
    seen.push(answer_pod(&mut h, 200, creating).await);
    let running = with_ephemeral(
        pod("api-1", "uid-1"),
        &name,
        json!({"running": {"startedAt": "2026-11-30T12:00:00Z"}}),
    );
    seen.push(answer_pod(&mut h, 200, running).await);
    assert_eq!(
        task.await.unwrap(),
        Ok(NetAccess::Sidecar {
            helper: format!("api-1/{name}"),
            image: "registry.local/tc:2".into()
        })
    );
    assert_granted(
        &seen,
        &fault::rbac_rules(&fault(
            json!({"network": {"delay": "10ms", "duration": "5s"}}),
        )),
    );
}

/// Accepts the next request, the patch that adds an ephemeral container to api-1, as the
/// API server does (answering the pod with it, not yet started); returns its name.
async fn accept_ephemeral(h: &mut Handle) -> String {
    let (patch, reply) = next(h).await;
    let name = ephemeral_name(&patch.body);
    reply.send_response(respond(
        200,
        &with_ephemeral(pod("api-1", "uid-1"), &name, json!({})),
    ));
    name
}

/// The name of the ephemeral container a patch adds.
fn ephemeral_name(patch: &Value) -> String {
    patch["spec"]["ephemeralContainers"][0]["name"]
        .as_str()
        .expect("the patch names its ephemeral container")
        .to_string()
}

#[tokio::test]
async fn network_access_errors() {
    let life = Duration::from_secs(70);
    let access = |p: Arc<KubernetesPlatform>| async move {
        p.enter_netns(
            &target("api-1", "uid-1"),
            &netns(NetworkStrategy::Sidecar, None, life),
        )
        .await
    };

    // 422: e.g. a cluster without ephemeral containers, or a bad image name.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(access(p));
    let msg = "Pod \"api-1\" is invalid: spec.ephemeralContainers[0].image: Required value";
    answer_patch(&mut h, 422, status(422, "Invalid", msg, "Pod", "api-1")).await;
    assert_eq!(
        task.await.unwrap(),
        Err(PlatformError::Refused(format!(
            "the Kubernetes API refused to patch pods/ephemeralcontainers: {msg}"
        )))
    );

    // 403 on the subresource.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(access(p));
    let msg = "pods \"api-1\" is forbidden: User \"alice\" cannot patch resource \"pods/ephemeralcontainers\" in API group \"\" in the namespace \"shop\"";
    answer_patch(&mut h, 403, status(403, "Forbidden", msg, "pods", "api-1")).await;
    assert_eq!(
        task.await.unwrap().unwrap_err().to_string(),
        "forbidden: cannot `patch` `pods/ephemeralcontainers` in namespace `shop` as `alice` — grant it (see `faultline rbac FILE`)"
    );

    // 404: the pod vanished.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(access(p));
    answer_patch(&mut h, 404, not_found("api-1")).await;
    assert_gone(task).await;

    // The pod vanishes while the helper starts.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(access(p));
    accept_ephemeral(&mut h).await;
    answer_pod(&mut h, 404, not_found("api-1")).await;
    assert_gone(task).await;

    // The image cannot be pulled.
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn(access(p));
    let name = accept_ephemeral(&mut h).await;
    let pulling = with_ephemeral(
        pod("api-1", "uid-1"),
        &name,
        json!({"waiting": {"reason": "ErrImagePull", "message": "pull access denied for registry.local/tc"}}),
    );
    answer_pod(&mut h, 200, pulling).await;
    let err = task.await.unwrap().unwrap_err().to_string();
    assert!(
        err.starts_with(
            "the network helper cannot start in pod `api-1`: ErrImagePull: pull access denied"
        ),
        "{err}"
    );

    // `host` cannot work from outside the node: refused before any request.
    let (p, _h) = mocked(spec());
    let err = p
        .enter_netns(
            &target("api-1", "uid-1"),
            &netns(NetworkStrategy::Host, None, life),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("strategy `host` is not available on Kubernetes"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// The kubernetes probe

fn probe(v: Value) -> KubernetesProbe {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn probe_counts_ready_pods_and_available_replicas() {
    let (svc, mut h) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let server = tokio::spawn(async move {
        let mut not_ready = pod("api-2", "uid-2");
        not_ready["status"]["conditions"][1]["status"] = json!("False");
        let mut leaving = pod("api-3", "uid-3");
        leaving["metadata"]["deletionTimestamp"] = json!("2026-11-30T12:00:00Z");
        let list = pod_list(vec![
            pod("api-1", "uid-1"),
            not_ready,
            leaving,
            pod("api-4", "uid-4"),
        ]);
        let s1 = answer(
            &mut h,
            "GET",
            &format!("{PODS}?labelSelector=app%3Dapi"),
            200,
            list,
        )
        .await;
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "shop", "uid": "d-uid"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "api"}]}}},
            "status": {"replicas": 3, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 3}
        });
        let s2 = answer(
            &mut h,
            "GET",
            "/apis/apps/v1/namespaces/shop/deployments/api",
            200,
            deployment,
        )
        .await;
        let s3 = answer(
            &mut h,
            "GET",
            &format!("{PODS}?labelSelector=app%3Dapi"),
            200,
            pod_list(vec![
                pod("api-1", "uid-1"),
                pod("api-2", "uid-2"),
                pod("api-4", "uid-4"),
            ]),
        )
        .await;
        answer(
            &mut h,
            "GET",
            "/apis/apps/v1/namespaces/shop/deployments/nope",
            404,
            status(
                404,
                "NotFound",
                "deployments.apps \"nope\" not found",
                "deployments",
                "nope",
            ),
        )
        .await;
        answer(&mut h, "GET", "/apis/apps/v1/namespaces/shop/deployments/api", 403,
            status(403, "Forbidden", "deployments.apps \"api\" is forbidden: User \"system:serviceaccount:chaos:faultline\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"shop\"", "deployments", "api")).await;
        (s1, s2, s3)
    });
    use faultline::probe::kubernetes::sample_with;
    let ready = probe(json!({"namespace": "shop", "selector": "app=api", "ready": ">= 2"}));
    let s = sample_with(&client, Some("test"), &ready).await;
    assert!(s.ok, "{s:?}");
    assert_eq!(s.detail, "2 ready (want >= 2; 1 not ready, 1 terminating)");
    let available = probe(json!({"namespace": "shop", "deployment": "api", "available": ">= 2"}));
    let s = sample_with(&client, Some("test"), &available).await;
    assert!(!s.ok);
    assert_eq!(s.detail, "1 available (want >= 2)");
    let missing = probe(json!({"namespace": "shop", "deployment": "nope", "available": 1}));
    let s = sample_with(&client, Some("test"), &missing).await;
    assert!(!s.ok);
    assert_eq!(s.detail, "deployment `nope` not found in namespace `shop`");
    let s = sample_with(&client, Some("test"), &available).await;
    assert_eq!(
        s.detail,
        "forbidden: cannot `get` `deployments.apps` in namespace `shop` as `system:serviceaccount:chaos:faultline` — grant it (see `faultline rbac FILE`)"
    );
    let (s1, s2, s3) = server.await.unwrap();
    assert_granted(&[s1], &rbac::for_probe(&ready));
    assert_granted(&[s2, s3], &rbac::for_probe(&available));
}

fn deployment(generation: i64, observed: i64, available: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop", "uid": "d-uid", "generation": generation},
        "spec": {"replicas": 3,
                 "selector": {"matchLabels": {"app": "api"},
                              "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["canary"]}]},
                 "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "api"}]}}},
        "status": {"observedGeneration": observed, "replicas": 3, "readyReplicas": available,
                   "availableReplicas": available, "updatedReplicas": 3}
    })
}

/// Right after a kill the Deployment's status still counts the killed pod, which is
/// Terminating (or already gone) while its replacement starts: what a real cluster showed
/// as "recovered after 20 ms".
#[tokio::test]
async fn probe_available_is_not_fooled_by_a_lagging_deployment_status() {
    let (svc, mut h) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let dep = "/apis/apps/v1/namespaces/shop/deployments/api";
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        // The status still says 3 available; one pod is Terminating, its replacement
        // is not Ready yet.
        seen.push(answer(&mut h, "GET", dep, 200, deployment(4, 4, 3)).await);
        let mut terminating = pod("api-3", "uid-3");
        terminating["metadata"]["deletionTimestamp"] = json!("2026-11-30T12:00:00Z");
        let mut replacement = pod("api-5", "uid-5");
        replacement["status"]["conditions"][1]["status"] = json!("False");
        replacement["status"]["phase"] = json!("Pending");
        let list = pod_list(vec![
            pod("api-1", "uid-1"),
            pod("api-2", "uid-2"),
            terminating,
            replacement.clone(),
        ]);
        let q = format!("{PODS}?labelSelector=app%3Dapi%2Ctier+notin+%28canary%29");
        seen.push(answer(&mut h, "GET", &q, 200, list).await);
        // A force-deleted pod is gone at once: the status lags the same way.
        seen.push(answer(&mut h, "GET", dep, 200, deployment(4, 4, 3)).await);
        let list = pod_list(vec![
            pod("api-1", "uid-1"),
            pod("api-2", "uid-2"),
            replacement,
        ]);
        seen.push(answer(&mut h, "GET", &q, 200, list).await);
        // A spec change the controller has not observed yet: the status is not for it.
        seen.push(answer(&mut h, "GET", dep, 200, deployment(5, 4, 3)).await);
        // Recovered: the replacement is Ready.
        seen.push(answer(&mut h, "GET", dep, 200, deployment(5, 5, 3)).await);
        let list = pod_list(vec![
            pod("api-1", "uid-1"),
            pod("api-2", "uid-2"),
            pod("api-5", "uid-5"),
        ]);
        seen.push(answer(&mut h, "GET", &q, 200, list).await);
        seen
    });
    use faultline::probe::kubernetes::sample_with;
    let available = probe(json!({"namespace": "shop", "deployment": "api", "available": ">= 3"}));
    let s = sample_with(&client, Some("test"), &available).await;
    assert!(!s.ok, "{s:?}");
    assert_eq!(
        s.detail,
        "2 available (want >= 3; 1 not ready, 1 terminating)"
    );
    let s = sample_with(&client, Some("test"), &available).await;
    assert!(!s.ok, "{s:?}");
    assert_eq!(s.detail, "2 available (want >= 3; 1 not ready)");
    let s = sample_with(&client, Some("test"), &available).await;
    assert!(!s.ok, "{s:?}");
    assert_eq!(
        s.detail,
        "deployment `api`'s status is for generation 4, its spec is at 5: the change is not rolled out yet"
    );
    let s = sample_with(&client, Some("test"), &available).await;
    assert!(s.ok, "{s:?}");
    assert_eq!(s.detail, "3 available (want >= 3)");
    assert_granted(&server.await.unwrap(), &rbac::for_probe(&available));
}

// ---------------------------------------------------------------------------------------
// A loopback fake API server: plain HTTP/1.1 with keep-alive, and the exec websocket
// (subprotocol v4.channel.k8s.io: channel 1 stdout, 2 stderr, 3 the final Status).

mod fake {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    pub(crate) enum Answer {
        Json(u16, Value),
        Exec {
            stdout: String,
            stderr: String,
            status: Value,
        },
    }

    impl Answer {
        pub(crate) fn exec_ok(stdout: &str) -> Answer {
            Answer::Exec {
                stdout: stdout.into(),
                stderr: String::new(),
                status: json!({"metadata": {}, "status": "Success"}),
            }
        }

        pub(crate) fn exec_exit(code: i32, stderr: &str) -> Answer {
            Answer::Exec {
                stdout: String::new(),
                stderr: stderr.into(),
                status: json!({
                    "metadata": {}, "status": "Failure",
                    "message": format!("command terminated with non-zero exit code: error executing command [..], exit code {code}"),
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
                }),
            }
        }

        /// What a process run here for real answers as an exec: its output and exit.
        pub(crate) fn from_output(out: &std::process::Output) -> Answer {
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            match out.status.code() {
                Some(0) => Answer::Exec {
                    stdout,
                    stderr,
                    status: json!({"metadata": {}, "status": "Success"}),
                },
                code => match Answer::exec_exit(code.unwrap_or(128), &stderr) {
                    Answer::Exec { stderr, status, .. } => Answer::Exec {
                        stdout,
                        stderr,
                        status,
                    },
                    other => other,
                },
            }
        }
    }

    pub(crate) type Handler = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

    pub(crate) struct Server {
        pub url: String,
        pub seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Server {
        pub(crate) fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    pub(crate) async fn start(handler: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (handler, log) = (handler.clone(), log.clone());
                tokio::spawn(async move {
                    let _ = connection(stream, handler, log).await;
                });
            }
        });
        Server { url, seen }
    }

    async fn connection(
        stream: tokio::net::TcpStream,
        handler: Handler,
        log: Arc<Mutex<Vec<Seen>>>,
    ) -> std::io::Result<()> {
        let mut stream = BufReader::new(stream);
        loop {
            let mut request_line = String::new();
            if stream.read_line(&mut request_line).await? == 0 {
                return Ok(());
            }
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let target = parts.next().unwrap_or("").to_string();
            let mut headers = BTreeMap::new();
            loop {
                let mut line = String::new();
                stream.read_line(&mut line).await?;
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            stream.read_exact(&mut body).await?;
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let seen = Seen {
                method,
                path: path.to_string(),
                query: query.to_string(),
                content_type: headers.get("content-type").cloned().unwrap_or_default(),
                body: if body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&body).unwrap_or(Value::Null)
                },
            };
            log.lock().unwrap().push(seen.clone());
            match handler(&seen) {
                Answer::Json(code, v) => {
                    let body = serde_json::to_vec(&v).unwrap();
                    let head = format!(
                        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    stream.get_mut().write_all(head.as_bytes()).await?;
                    stream.get_mut().write_all(&body).await?;
                }
                Answer::Exec {
                    stdout,
                    stderr,
                    status,
                } => {
                    let key = headers
                        .get("sec-websocket-key")
                        .cloned()
                        .unwrap_or_default();
                    let accept = base64(&sha1(
                        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
                    ));
                    let head = format!(
                        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\nsec-websocket-protocol: v4.channel.k8s.io\r\n\r\n"
                    );
                    let s = stream.get_mut();
                    s.write_all(head.as_bytes()).await?;
                    for (channel, data) in [
                        (1u8, stdout.into_bytes()),
                        (2, stderr.into_bytes()),
                        // Null: the stream closes without a status.
                        (
                            3,
                            if status.is_null() {
                                Vec::new()
                            } else {
                                serde_json::to_vec(&status).unwrap()
                            },
                        ),
                    ] {
                        if data.is_empty() {
                            continue;
                        }
                        let mut payload = vec![channel];
                        payload.extend(data);
                        s.write_all(&frame(0x2, &payload)).await?;
                    }
                    s.write_all(&frame(0x8, &[0x03, 0xe8])).await?;
                    let mut sink = [0u8; 1024];
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while stream.read(&mut sink).await.unwrap_or(0) > 0 {}
                    })
                    .await;
                    return Ok(());
                }
            }
        }
    }

    /// An unmasked server frame.
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(n as u8),
            n if n < 65536 => {
                out.push(126);
                out.extend((n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend((n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
        let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
        let mut msg = data.to_vec();
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend(((data.len() as u64) * 8).to_be_bytes());
        for chunk in msg.chunks(64) {
            let mut w = [0u32; 80];
            for i in 0..16 {
                w[i] = u32::from_be_bytes(chunk[4 * i..4 * i + 4].try_into().unwrap());
            }
            for i in 16..80 {
                w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
            }
            let [mut a, mut b, mut c, mut d, mut e] = h;
            for (i, wi) in w.iter().enumerate() {
                let (f, k) = match i {
                    0..=19 => ((b & c) | (!b & d), 0x5A827999),
                    20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                    40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                    _ => (b ^ c ^ d, 0xCA62C1D6),
                };
                let t = a
                    .rotate_left(5)
                    .wrapping_add(f)
                    .wrapping_add(e)
                    .wrapping_add(k)
                    .wrapping_add(*wi);
                e = d;
                d = c;
                c = b.rotate_left(30);
                b = a;
                a = t;
            }
            for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
                *x = x.wrapping_add(y);
            }
        }
        let mut out = [0u8; 20];
        for (i, x) in h.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
        }
        out
    }

    pub(crate) fn base64(data: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in data.chunks(3) {
            let n = u32::from(c[0]) << 16
                | u32::from(*c.get(1).unwrap_or(&0)) << 8
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// A platform on the fake API server, with a helper image if given.
fn on_fake(
    server: &fake::Server,
    spec: KubernetesTarget,
    image: Option<&str>,
) -> KubernetesPlatform {
    KubernetesPlatform::with_client(fake_client(&server.url), spec, Some("fake".into()))
        .with_tc_image(image.map(str::to_string))
        .with_timing(timing())
}

/// What the fake API server answers a request it has no route for.
fn no_route(s: &Seen) -> fake::Answer {
    fake::Answer::Json(
        404,
        status(404, "NotFound", &format!("no route {}", s.line()), "", ""),
    )
}

/// The API server's answer to an exec into a container that does not run (any more).
fn not_valid(container: &str) -> fake::Answer {
    fake::Answer::Json(
        400,
        status(
            400,
            "BadRequest",
            &format!("container {container} is not valid for pod api-1"),
            "",
            "",
        ),
    )
}

fn fake_client(url: &str) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new(url.parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

#[test]
fn the_fake_servers_websocket_accept_key_is_rfc_6455s() {
    let accept = fake::base64(&fake::sha1(
        b"dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
    ));
    assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/// The exec commands (decoded `command` query parameters) and container of each exec.
/// `cmds` as the execs `execs` lists for them in `helper`.
fn in_helper(helper: &str, cmds: &[&str]) -> Vec<(String, String)> {
    cmds.iter()
        .map(|c| (helper.to_string(), c.to_string()))
        .collect()
}

fn execs(seen: &[Seen]) -> Vec<(String, String)> {
    seen.iter()
        .filter(|s| s.path.ends_with("/exec"))
        .map(|s| (s.container(), s.argv().join(" ")))
        .collect()
}

/// [`execs`] whose command `keep` keeps.
fn execs_where(seen: &[Seen], keep: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    execs(seen).into_iter().filter(|(_, c)| keep(c)).collect()
}

/// A pod `api-1` whose network helper runs `tc` against a simulated qdisc. The helper's
/// script runs for real, as the container runtime would run it: the command the kubelet
/// makes of the patch, in a local `sh`, with the container's `/tmp` in a temporary
/// directory and `tc` simulated. Its exit is the ephemeral container's terminated state,
/// and the stop exec runs for real too.
#[derive(Default)]
struct NetState {
    helper: Option<String>,
    polls: usize,
    qdisc: bool,
    ended: bool,
    add_fails: bool,
    pod_gone: bool,
    /// The helper's exit code once it has ended.
    exit: Option<i32>,
    container: Option<Container>,
    /// faultline's IFB device, and an ingress qdisc redirecting to it (ingress on tc).
    ifb: bool,
    ingress: bool,
}

/// A container's main process, run locally.
struct Container {
    child: std::process::Child,
    tmp: tempfile::TempDir,
    exit: Option<i32>,
}

impl Container {
    /// Starts what the kubelet would run for the container spec `c`.
    fn start(c: &Value) -> Container {
        let tmp = tempfile::tempdir().unwrap();
        let argv: Vec<String> = kubelet_command(c)
            .iter()
            .map(|a| Container::localize(a, &tmp))
            .collect();
        // Its own process group: everything it starts goes with it at the end.
        let child = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        Container {
            child,
            tmp,
            exit: None,
        }
    }

    /// The container's `/tmp` is a local directory; `tc` changes nothing here.
    fn localize(arg: &str, tmp: &tempfile::TempDir) -> String {
        arg.replace("/tmp/", &format!("{}/", tmp.path().display()))
            .replace("tc qdisc", "true qdisc")
            .replace("iptables ", "true ")
    }

    /// Runs an exec's argv in the container, for real.
    fn exec(&self, argv: &[String]) -> std::process::Output {
        let argv: Vec<String> = argv
            .iter()
            .map(|a| Container::localize(a, &self.tmp))
            .collect();
        std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .unwrap()
    }

    /// The exit code once the main process has ended.
    fn exited(&mut self) -> Option<i32> {
        if self.exit.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exit = Some(st.code().unwrap_or(128));
            }
        }
        self.exit
    }

    fn pid_file(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("faultline-net.pid")).unwrap_or_default()
    }
}

impl Drop for Container {
    /// The container is removed: its processes (a backgrounded `sleep` too) end.
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl NetState {
    /// A helper an earlier run added: its container runs.
    fn running(helper: &str) -> NetState {
        let patch = faultline::platform::kubernetes::network::ephemeral_patch(
            "uid-1",
            helper,
            "registry.local/tc:1",
            "tc qdisc del dev eth0 root handle fa17: 2>/dev/null",
            Duration::from_secs(70),
        );
        NetState {
            helper: Some(helper.into()),
            polls: 1,
            qdisc: true,
            container: Some(Container::start(&patch["spec"]["ephemeralContainers"][0])),
            ..Default::default()
        }
    }
}

/// The IFB device and the ingress qdisc as `ip` and `tc` would answer for them.
fn ifb_exec(st: &mut NetState, argv: &str) -> Option<fake::Answer> {
    let ok = fake::Answer::exec_ok;
    // The commands that add or remove the device or the ingress qdisc.
    let switch = match argv {
        "ip link add ifb-fa17 type ifb" => Some((&mut st.ifb, true)),
        "ip link del ifb-fa17" => Some((&mut st.ifb, false)),
        "tc qdisc add dev eth0 handle ffff: ingress" => Some((&mut st.ingress, true)),
        "tc qdisc del dev eth0 ingress" => Some((&mut st.ingress, false)),
        _ => None,
    };
    if let Some((flag, on)) = switch {
        *flag = on;
        return Some(ok(""));
    }
    Some(match argv {
        "ip link show ifb-fa17" if st.ifb => ok("5: ifb-fa17: <BROADCAST,NOARP,UP,LOWER_UP>\n"),
        "ip link show ifb-fa17" => {
            fake::Answer::exec_exit(1, "Device \"ifb-fa17\" does not exist.\n")
        }
        "ip link set dev ifb-fa17 up" => ok(""),
        "tc qdisc show dev eth0" if st.ingress => ok(
            "qdisc noqueue 0: root refcnt 2\nqdisc ingress ffff: parent ffff:fff1 ----------------\n",
        ),
        "tc filter show dev eth0 parent ffff:" if st.ingress => ok(
            "filter protocol all pref 1 u32 chain 0 fh 800::800 order 2048 key ht 800 bkt 0 flowid ??? \n\taction order 1: mirred (Egress Redirect to device ifb-fa17) stolen\n",
        ),
        "tc filter show dev eth0 parent ffff:" => ok(""),
        a if a.starts_with("tc qdisc add dev ifb-fa17 ")
            || a.starts_with("tc filter add dev eth0 parent ffff: ") =>
        {
            ok("")
        }
        _ => return None,
    })
}

fn net_handler(state: Arc<Mutex<NetState>>) -> fake::Handler {
    Arc::new(move |s: &Seen| {
        let mut st = state.lock().unwrap();
        let pod_path = format!("{PODS}/api-1");
        if st.pod_gone {
            return fake::Answer::Json(404, not_found("api-1"));
        }
        if s.method == "PATCH" && s.path == format!("{pod_path}/ephemeralcontainers") {
            let name = ephemeral_name(&s.body);
            st.helper = Some(name.clone());
            st.container = Some(Container::start(&s.body["spec"]["ephemeralContainers"][0]));
            return fake::Answer::Json(
                200,
                with_ephemeral(pod("api-1", "uid-1"), &name, json!({})),
            );
        }
        let helper = st
            .helper
            .clone()
            .unwrap_or_else(|| "faultline-net-00000001".into());
        // The helper's script deletes its qdisc as it ends.
        if let Some(code) = st.container.as_mut().and_then(Container::exited) {
            if !st.ended {
                st.ended = true;
                st.exit = Some(code);
                st.qdisc = false;
            }
        }
        if s.method == "GET" && s.path == pod_path {
            st.polls += 1;
            let state = if st.ended {
                let code = st.exit.unwrap_or(0);
                json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }}})
            } else if st.polls == 1 && st.helper.is_some() {
                json!({"waiting": {"reason": "ContainerCreating"}})
            } else {
                json!({"running": {"startedAt": "2026-11-30T12:00:00Z"}})
            };
            return fake::Answer::Json(200, with_ephemeral(pod("api-1", "uid-1"), &helper, state));
        }
        if s.method == "GET" && s.path == format!("{pod_path}/exec") {
            if st.ended {
                return not_valid(&helper);
            }
            let argv = s.argv();
            let argv = argv.join(" ");
            return if let Some(answer) = ifb_exec(&mut st, &argv) {
                answer
            } else if argv.starts_with("tc qdisc show") {
                fake::Answer::exec_ok(if st.qdisc {
                    "qdisc netem fa17: root refcnt 2 limit 1000 delay 100ms\n"
                } else {
                    "qdisc noqueue 0: root refcnt 2\n"
                })
            } else if argv.starts_with("tc qdisc add") {
                if st.add_fails {
                    fake::Answer::exec_exit(2, "RTNETLINK answers: Operation not permitted\n")
                } else {
                    st.qdisc = true;
                    fake::Answer::exec_ok("")
                }
            } else if argv.starts_with("tc qdisc del") {
                st.qdisc = false;
                fake::Answer::exec_ok("")
            } else if argv.starts_with("sh -c read pid") {
                let argv = s.argv();
                let out = st.container.as_ref().expect("a helper runs").exec(&argv);
                fake::Answer::from_output(&out)
            } else {
                fake::Answer::Exec {
                    stdout: String::new(),
                    stderr: String::new(),
                    status: json!({"status": "Failure", "reason": "InternalError",
                        "message": format!("exec: \"{argv}\": executable file not found in $PATH")}),
                }
            };
        }
        no_route(s)
    })
}

/// The network helper's script, as the kubelet runs it (after its expansion).
fn helper_script(server: &fake::Server) -> String {
    let patch = server
        .seen()
        .into_iter()
        .find(|s| s.method == "PATCH")
        .unwrap();
    kubelet_command(&patch.body["spec"]["ephemeralContainers"][0])[2].clone()
}

/// A fresh network helper on the fake API server, a platform with a helper image on it,
/// and the target pod `api-1`.
async fn net_fake() -> (
    Arc<Mutex<NetState>>,
    fake::Server,
    KubernetesPlatform,
    Target,
) {
    let state = Arc::new(Mutex::new(NetState::default()));
    let server = fake::start(net_handler(state.clone())).await;
    let p = on_fake(&server, spec(), Some("registry.local/tc:1"));
    (state, server, p, target("api-1", "uid-1"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_fault_end_to_end_over_the_exec_websocket() {
    let (state, server, p, t) = net_fake().await;
    let f = fault(json!({"network": {"delay": "100ms", "duration": "10s"}}));

    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let helper = state.lock().unwrap().helper.clone().unwrap();
    let fault::UndoRecord::RemoveQdisc { qdisc, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    assert_eq!(
        qdisc.access,
        NetAccess::Sidecar {
            helper: format!("api-1/{helper}"),
            image: "registry.local/tc:1".into()
        }
    );
    // The helper outlives the fault by twice the revert timeout.
    let script = helper_script(&server);
    assert!(script.contains("sleep 70 & wait $!"), "{script}");

    fault::inject(&p, &f, &t, Some(&undo)).await.unwrap();
    assert!(state.lock().unwrap().qdisc);
    fault::revert(&p, &undo).await.unwrap();
    {
        let st = state.lock().unwrap();
        assert!(!st.qdisc && st.ended);
        // The script wrote its own PID, and ended by its TERM trap.
        let c = st.container.as_ref().unwrap();
        assert_eq!(c.pid_file().trim(), c.child.id().to_string());
        assert_eq!(st.exit, Some(0));
    }

    let seen = server.seen();
    assert_eq!(
        execs(&seen),
        in_helper(
            &helper,
            &[
                // A free queue for the delayer, in case the kernel has no netem.
                "cat /proc/net/netfilter/nfnetlink_queue",
                "tc qdisc show dev eth0",
                "tc qdisc add dev eth0 root handle fa17: netem delay 100ms",
                // Revert: netem is there, so the delayer never ran: no rule, no container.
                "tc qdisc show dev eth0",
                "tc qdisc show dev eth0",
                "tc qdisc del dev eth0 root handle fa17:",
                "tc qdisc show dev eth0",
                "sh -c read pid < /tmp/faultline-net.pid && kill -TERM \"$pid\"",
            ],
        )
    );
    // Each exec asks for stdout and stderr only.
    let exec = seen.iter().find(|s| s.path.ends_with("/exec")).unwrap();
    let pairs = exec.pairs();
    assert!(
        pairs.contains(&("stdout".into(), "true".into()))
            && pairs.contains(&("stderr".into(), "true".into()))
    );
    assert!(!pairs.iter().any(|(k, v)| k == "stdin" && v == "true"));
    assert_granted(&seen, &fault::rbac_rules(&f));

    // After the helper ended, its qdisc went with it: the revert of a later `recover`
    // closes the entry instead of failing forever.
    assert_eq!(
        fault::revert(&p, &undo).await,
        Err(PlatformError::Gone("api-1".into()))
    );
}

/// Ingress on tc, on a pod: the IFB device, its qdisc and the redirecting ingress qdisc
/// are set up and removed through exec in the network helper, and the helper's own exit
/// script removes them too (faultline died).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_rate_on_a_pod_goes_through_an_ifb_device_in_the_helper() {
    let (state, server, p, t) = net_fake().await;
    let f = fault(json!({"network": {"rate": "1mbit", "direction": "ingress", "duration": "10s"}}));

    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let helper = state.lock().unwrap().helper.clone().unwrap();
    let script = helper_script(&server);
    assert!(
        script.contains(&fault::ifb::shell_teardown("eth0")),
        "the helper's exit script does not remove the IFB device: {script}"
    );
    fault::inject(&p, &f, &t, Some(&undo)).await.unwrap();
    {
        let st = state.lock().unwrap();
        assert!(
            st.ifb && st.ingress,
            "no IFB device or ingress qdisc: {:?}",
            execs(&server.seen())
        );
        // What the pod sends is not shaped: no root qdisc on eth0.
        assert!(!st.qdisc);
    }
    fault::revert(&p, &undo).await.unwrap();
    {
        let st = state.lock().unwrap();
        assert!(!st.ifb && !st.ingress && st.ended);
    }
    assert_eq!(
        execs(&server.seen()),
        in_helper(
            &helper,
            &[
                "ip link show ifb-fa17",
                "tc qdisc show dev eth0",
                "ip link add ifb-fa17 type ifb",
                "ip link set dev ifb-fa17 up",
                "tc qdisc add dev ifb-fa17 root handle fa17: tbf rate 1000000bit burst 5000 latency 400ms",
                "tc qdisc add dev eth0 handle ffff: ingress",
                "tc filter add dev eth0 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ifb-fa17",
                // Revert: the ingress qdisc is ours (it redirects to the device), then the device.
                "tc qdisc show dev eth0",
                "tc filter show dev eth0 parent ffff:",
                "tc qdisc del dev eth0 ingress",
                "ip link show ifb-fa17",
                "ip link del ifb-fa17",
                "ip link show ifb-fa17",
                "sh -c read pid < /tmp/faultline-net.pid && kill -TERM \"$pid\"",
            ],
        )
    );
    assert_granted(&server.seen(), &fault::rbac_rules(&f));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_exec_reports_exit_codes_and_a_vanished_pod() {
    let state = Arc::new(Mutex::new(NetState {
        add_fails: true,
        ..Default::default()
    }));
    let server = fake::start(net_handler(state.clone())).await;
    let p = on_fake(&server, spec(), Some("registry.local/tc:1"));
    let t = target("api-1", "uid-1");
    let f = fault(json!({"network": {"loss": 5, "duration": "10s"}}));
    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let err = fault::inject(&p, &f, &t, Some(&undo)).await.unwrap_err();
    assert_eq!(
        err,
        PlatformError::Refused(
            "`tc qdisc add dev` failed (exit 2): RTNETLINK answers: Operation not permitted".into()
        )
    );
    let fault::UndoRecord::RemoveQdisc { qdisc, .. } = &undo.record else {
        panic!()
    };
    let out = p
        .netns_exec(&t, &qdisc.access, &["nosuch".into()])
        .await
        .unwrap();
    assert_eq!(out.code, -1);
    assert!(out.stderr.contains("executable file not found"), "{out:?}");

    // The pod is deleted mid-fault: every later call says Gone, and release is a no-op.
    state.lock().unwrap().pod_gone = true;
    assert_eq!(
        p.netns_exec(
            &t,
            &qdisc.access,
            &["tc".into(), "qdisc".into(), "show".into()]
        )
        .await,
        Err(PlatformError::Gone("api-1".into()))
    );
    assert_eq!(p.leave_netns(&qdisc.access).await, Ok(()));
    assert_eq!(
        fault::revert(&p, &undo).await,
        Err(PlatformError::Gone("api-1".into()))
    );
}

// ---------------------------------------------------------------------------------------
// cpu_stress: the stressor is PID 1 of its ephemeral container. It runs here for real (the
// kubelet's command in a local `sh`, at a low load), and so does revert's kill script.
// When PID 1 of a container ends, the kernel kills everything else in its PID namespace,
// the exec that killed it included: that exec answers with empty output (exit 137), and
// the container's state becomes `terminated`.

#[derive(Default)]
struct StressState {
    container: Option<Container>,
    name: Option<String>,
    /// An exec ends as a closed stream, without a status, instead of with exit 137.
    exec_closes: bool,
}

fn stress_handler(state: Arc<Mutex<StressState>>) -> fake::Handler {
    Arc::new(move |s: &Seen| {
        let mut st = state.lock().unwrap();
        let pod_path = format!("{PODS}/api-1");
        if s.method == "PATCH" && s.path == format!("{pod_path}/ephemeralcontainers") {
            let c = &s.body["spec"]["ephemeralContainers"][0];
            let name = c["name"].as_str().unwrap().to_string();
            st.container = Some(Container::start(c));
            st.name = Some(name.clone());
            return fake::Answer::Json(
                200,
                with_ephemeral(pod("api-1", "uid-1"), &name, json!({})),
            );
        }
        let exit = st.container.as_mut().and_then(Container::exited);
        if s.method == "GET" && s.path == pod_path {
            let Some(name) = st.name.clone() else {
                return fake::Answer::Json(200, pod("api-1", "uid-1"));
            };
            let state = match exit {
                Some(code) => json!({"terminated": {"exitCode": code,
                    "reason": if code == 0 { "Completed" } else { "Error" }}}),
                None => json!({"running": {"startedAt": "2026-11-30T12:00:00Z"}}),
            };
            return fake::Answer::Json(200, with_ephemeral(pod("api-1", "uid-1"), &name, state));
        }
        if s.method == "GET" && s.path == format!("{pod_path}/exec") {
            let container = s.container();
            if exit.is_some() || st.name.as_deref() != Some(container.as_str()) {
                return not_valid(&container);
            }
            let argv = s.argv();
            let c = st.container.as_mut().unwrap();
            let out = c.exec(&argv);
            // Give PID 1's end a moment to be seen, as the kernel would act at once.
            let start = std::time::Instant::now();
            while c.exited().is_none() && start.elapsed() < Duration::from_millis(500) {
                std::thread::sleep(Duration::from_millis(10));
            }
            if c.exited().is_some() {
                return if st.exec_closes {
                    fake::Answer::Exec {
                        stdout: String::new(),
                        stderr: String::new(),
                        status: Value::Null,
                    }
                } else {
                    fake::Answer::exec_exit(137, "")
                };
            }
            return fake::Answer::Exec {
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                status: json!({"metadata": {}, "status": "Success"}),
            };
        }
        no_route(s)
    })
}

async fn stress_platform(
    state: &Arc<Mutex<StressState>>,
    image: bool,
) -> (KubernetesPlatform, fake::Server) {
    let server = fake::start(stress_handler(state.clone())).await;
    let p = on_fake(&server, spec(), image.then_some("registry.local/busybox:1"));
    (p, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_stress_revert_is_confirmed_by_the_stressors_terminated_state() {
    for exec_closes in [false, true] {
        let state = Arc::new(Mutex::new(StressState {
            exec_closes,
            ..Default::default()
        }));
        let (p, server) = stress_platform(&state, true).await;
        let t = target("api-1", "uid-1");
        let f = fault(json!({"cpu_stress": {"duration": "5s", "workers": 2, "load": 5}}));
        let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
        let fault::UndoRecord::StopStressor { stressor, .. } = &undo.record else {
            panic!("{undo:?}")
        };
        fault::inject(&p, &f, &t, Some(&undo)).await.unwrap();
        // The stressor burns: its shell and its workers carry the marker.
        assert!(
            state
                .lock()
                .unwrap()
                .container
                .as_mut()
                .unwrap()
                .exited()
                .is_none()
        );
        assert!(
            faultline::platform::host::pids_with_marker(&stressor.marker).len() >= 3,
            "the shell and 2 workers"
        );

        assert_eq!(
            fault::revert(&p, &undo).await,
            Ok(()),
            "exec_closes: {exec_closes}"
        );
        assert!(
            state
                .lock()
                .unwrap()
                .container
                .as_mut()
                .unwrap()
                .exited()
                .is_some()
        );
        assert_eq!(
            faultline::platform::host::pids_with_marker(&stressor.marker),
            Vec::<i32>::new()
        );
        // A second revert (e.g. `recover`) finds it ended and execs nothing.
        let execs_before = execs(&server.seen()).len();
        assert_eq!(fault::revert(&p, &undo).await, Ok(()));
        assert_eq!(execs(&server.seen()).len(), execs_before);
        assert_granted(&server.seen(), &fault::rbac_rules(&f));
        // What the stressor's container runs, after the kubelet's expansion, is the
        // script (its `$((...))` and `$0` reach the shell as written).
        let seen = server.seen();
        let c = &patches(&seen)[0]["spec"]["ephemeralContainers"][0];
        assert_eq!(
            kubelet_command(c),
            [
                "sh",
                "-c",
                &fault::cpu_stress::exec_script(2, 5, 5),
                &stressor.marker
            ]
        );
        // An exec is not expanded by Kubernetes: the kill script goes unescaped.
        assert_eq!(
            execs(&seen)[0],
            (
                stressor.marker.clone(),
                format!(
                    "sh -c {}",
                    faultline::platform::host::kill_by_marker_script(&stressor.marker)
                )
            )
        );
    }
}

#[tokio::test]
async fn cpu_stress_names_the_stressor_when_its_image_cannot_be_pulled() {
    let (p, mut h) = mocked(spec());
    let task = tokio::spawn({
        let p = p.clone();
        async move {
            let marker = "faultline-stress-00000000000000ab";
            let argv: Vec<String> = vec![
                "sh".into(),
                "-c".into(),
                fault::cpu_stress::exec_script(1, 50, 10),
                marker.into(),
            ];
            p.start_process(
                &target("api-1", "uid-1"),
                faultline::platform::Placement::IN_TARGET,
                &argv,
                marker,
                Duration::from_secs(10),
            )
            .await
        }
    });
    let (patch, reply) = next(&mut h).await;
    assert_eq!(
        patch.line(),
        format!("PATCH {PODS}/api-1/ephemeralcontainers")
    );
    let name = "faultline-stress-00000000000000ab";
    reply.send_response(respond(
        200,
        &with_ephemeral(pod("api-1", "uid-1"), name, json!({})),
    ));
    let pulling = with_ephemeral(
        pod("api-1", "uid-1"),
        name,
        json!({"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}}),
    );
    answer_pod(&mut h, 200, pulling).await;
    let err = task.await.unwrap().unwrap_err().to_string();
    assert!(
        err.starts_with(
            "the stressor cannot start in pod `api-1`: ErrImagePull: pull access denied"
        ),
        "{err}"
    );
    assert!(err.ends_with("it needs `sh`)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_stress_without_an_image_releases_nothing_and_warns_nothing() {
    let state = Arc::new(Mutex::new(StressState::default()));
    let (p, server) = stress_platform(&state, false).await;
    let t = target("api-1", "uid-1");
    let f = fault(json!({"cpu_stress": {"duration": "5s"}}));
    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let err = fault::inject(&p, &f, &t, Some(&undo)).await.unwrap_err();
    assert!(err.to_string().contains("--tc-image"), "{err}");
    // What `release` does after a failed start: the container was never created, so
    // there is nothing to stop, and no exec into it (the API would answer 400).
    let fault::UndoRecord::StopStressor { stressor, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    assert_eq!(fault::cpu_stress::revert(&p, &t, stressor).await, Ok(()));
    assert_eq!(execs(&server.seen()), Vec::<(String, String)>::new());
    assert_granted(&server.seen(), &fault::rbac_rules(&f));
}

// ---------------------------------------------------------------------------------------
// The nfqueue engine on a node without netem. The network helper's script and the delayer
// container run here for real (the kubelet's commands in a local `sh`); the kernel is
// modelled: `tc qdisc add ... netem` answers as a kernel without `sch_netem` does, the
// iptables OUTPUT chain is a list of rules, /proc/net/netfilter/nfnetlink_queue lists the
// queue a running delayer has bound, and a packet's fate follows the NFQUEUE target's
// rules: a bound queue holds it; an unbound one drops it, unless the rule has
// `--queue-bypass`, which lets it through.

/// A stand-in for `faultline delayer` as PID 1 of its container: its command line carries
/// the real arguments (the marker too), it holds its queue while it runs, and it ends on
/// SIGTERM (the real delayer lets its packets go, then exits 0).
const DELAYER_STANDIN: &str = "trap 'exit 0' TERM; sleep 600 & wait $!";

#[derive(Default)]
struct NfqState {
    /// Ephemeral containers in the order they were added: name, spec, local process.
    containers: Vec<(String, Value, Container)>,
    /// faultline's root qdisc on eth0, by kind.
    qdisc: Option<String>,
    /// The OUTPUT chain, as `iptables -S OUTPUT` prints its rules.
    rules: Vec<String>,
    /// The helper image has no `faultline`: the runtime cannot start the delayer.
    no_faultline: bool,
    /// The directory the helper image's `getent` is in (a stand-in that answers as
    /// glibc's does); its PATH when `hosts` are resolved. `None`: the image has no getent.
    getent: Option<std::path::PathBuf>,
}

impl NfqState {
    fn delayer(&mut self) -> Option<&mut Container> {
        self.containers
            .iter_mut()
            .find(|(n, _, _)| n.starts_with("faultline-delayer-"))
            .map(|(_, _, c)| c)
    }

    /// Queues bound now: a running delayer's `--queue`.
    fn bound(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, spec, c) in self.containers.iter_mut() {
            let argv = kubelet_command(spec);
            if argv.first().map(String::as_str) == Some("faultline") && c.exited().is_none() {
                let i = argv.iter().position(|a| a == "--queue").unwrap();
                out.push(argv[i + 1].clone());
            }
        }
        out
    }

    /// What the kernel does with an outgoing packet.
    fn packet(&mut self) -> &'static str {
        let bound = self.bound();
        for rule in &self.rules {
            let words: Vec<&str> = rule.split_whitespace().collect();
            let Some(i) = words.iter().position(|w| *w == "--queue-num") else {
                continue;
            };
            if bound.iter().any(|q| q == words[i + 1]) {
                return "held by the delayer";
            }
            return if words.contains(&"--queue-bypass") {
                "sent"
            } else {
                "dropped"
            };
        }
        "sent"
    }
}

/// Runs one exec in the helper: `tc`, `cat` and `iptables` against the modelled kernel,
/// anything else in the container for real.
fn nfq_helper_exec(st: &mut NfqState, helper: &str, argv: &[String]) -> fake::Answer {
    let line = argv.join(" ");
    if line.starts_with("tc qdisc show") {
        return fake::Answer::exec_ok(&match &st.qdisc {
            Some(kind) => format!("qdisc {kind} fa17: root refcnt 2\n"),
            None => "qdisc noqueue 0: root refcnt 2\n".into(),
        });
    }
    if line.starts_with("tc qdisc add") {
        if argv.iter().any(|a| a == "netem") {
            // What tc prints when the kernel has no sch_netem (and cannot load it).
            return fake::Answer::exec_exit(2, "Error: Specified qdisc kind is unknown.\n");
        }
        st.qdisc = Some(argv[7].clone());
        return fake::Answer::exec_ok("");
    }
    if line.starts_with("tc qdisc del") {
        st.qdisc = None;
        return fake::Answer::exec_ok("");
    }
    // The pod's network namespace has lo and eth0.
    if let Some(dev) = line.strip_prefix("ip link show dev ") {
        return if ["lo", "eth0"].contains(&dev) {
            fake::Answer::exec_ok(&format!(
                "2: {dev}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500\n"
            ))
        } else {
            fake::Answer::exec_exit(1, &format!("Device \"{dev}\" does not exist.\n"))
        };
    }
    if line == "cat /proc/net/netfilter/nfnetlink_queue" {
        let listing: String = st
            .bound()
            .iter()
            .map(|q| format!("{q:>5}  31337     0 2     0     0     0        0  1\n"))
            .collect();
        return fake::Answer::exec_ok(&listing);
    }
    if let Some(chain) = line.strip_prefix("iptables -w -S ") {
        let mut out = format!("-P {chain} ACCEPT\n");
        for r in st
            .rules
            .iter()
            .filter(|r| r.starts_with(&format!("-A {chain} ")))
        {
            out.push_str(&format!("{r}\n"));
        }
        return fake::Answer::exec_ok(&out);
    }
    if let Some(spec) = line.strip_prefix("iptables -w -I ") {
        st.rules.insert(0, format!("-A {spec}"));
        return fake::Answer::exec_ok("");
    }
    if let Some(spec) = line.strip_prefix("iptables -w -D ") {
        return iptables_delete(&mut st.rules, spec);
    }
    if argv.get(2).map(String::as_str) == Some(fault::resolve::GETENT_SCRIPT) {
        // The helper image's PATH: its getent, or none.
        let empty = tempfile::tempdir().unwrap();
        let path = st
            .getent
            .clone()
            .unwrap_or_else(|| empty.path().to_path_buf());
        let out = std::process::Command::new("/bin/sh")
            .args(&argv[1..])
            .env("PATH", path)
            .output()
            .unwrap();
        return fake::Answer::from_output(&out);
    }
    let out = st.container(helper).unwrap().exec(argv);
    fake::Answer::from_output(&out)
}

/// A directory with a `getent` that answers `ahostsv4` as glibc's does: one line per
/// address and socket type, exit 2 for a name it cannot resolve.
fn getent_standin() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let getent = dir.path().join("getent");
    std::fs::write(
        &getent,
        "#!/bin/sh\n[ \"$1\" = ahostsv4 ] || exit 9\ncase \"$2\" in\n  db) printf '10.96.0.20      STREAM db.shop.svc.cluster.local\\n10.96.0.20      DGRAM  \\n10.96.0.20      RAW    \\n' ;;\n  cache) printf '10.244.1.7      STREAM cache\\n10.244.2.9      STREAM \\n' ;;\n  *) exit 2 ;;\nesac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&getent, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `hosts` on Kubernetes: resolved at inject time by `getent` in the network helper (it
/// shares the pod's network namespace and has the pod's /etc/hosts and resolv.conf), the
/// addresses journaled and reported, the rules naming exactly them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_in_a_scope_are_resolved_by_getent_in_the_network_helper() {
    let bin = getent_standin();
    let state = Arc::new(Mutex::new(NfqState {
        getent: Some(bin.path().to_path_buf()),
        ..Default::default()
    }));
    let (p, server) = nfq_platform(&state).await;
    let t = target("api-1", "uid-1");
    let f = fault(json!({"network": {
        "delay": "100ms", "duration": "10s", "engine": "nfqueue",
        "to": {"hosts": ["db", "cache"], "ports": [5432], "protocol": "tcp"}
    }}));
    assert_eq!(fault::preflight(&f, &p).await, Ok(()));
    // `plan` touches nothing: it says when and how they will be resolved.
    assert_eq!(
        fault::kind(&f)
            .plan_notes(&p, std::slice::from_ref(&t))
            .await,
        [
            "`to.hosts` in `api-1` are resolved when the fault is injected, by `getent ahostsv4` in the network helper (the pod's own /etc/hosts and resolv.conf); the report lists the addresses"
        ]
    );
    assert!(server.seen().is_empty(), "plan sent {:?}", server.seen());
    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let fault::UndoRecord::RemoveQdisc { qdisc, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    let peer = |name: &str, addresses: &[&str]| faultline::platform::Peer {
        name: name.into(),
        addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
    };
    assert_eq!(
        qdisc.peers,
        [
            peer("db", &["10.96.0.20"]),
            peer("cache", &["10.244.1.7", "10.244.2.9"])
        ]
    );
    let d = qdisc.delayer.clone().unwrap();
    let effects = fault::inject_reporting(&p, &f, &t, Some(&undo))
        .await
        .unwrap()
        .expect("a scoped fault reports its peers");
    assert_eq!(
        effects
            .peers
            .iter()
            .map(|p| (p.name.as_str(), p.addresses.join(",")))
            .collect::<Vec<_>>(),
        [
            ("db", "10.96.0.20".into()),
            ("cache", "10.244.1.7,10.244.2.9".into())
        ]
    );
    let tail = format!(
        "-p tcp -m multiport --dports 5432 -m comment --comment {} -j NFQUEUE --queue-num {} --queue-bypass",
        d.marker, d.queue
    );
    {
        let st = state.lock().unwrap();
        let mut rules = st.rules.clone();
        rules.sort();
        assert_eq!(
            rules,
            ["10.244.1.7", "10.244.2.9", "10.96.0.20"]
                .map(|a| format!("-A OUTPUT -o eth0 -d {a}/32 {tail}"))
        );
    }
    // Exactly one exec resolves them, in the network helper, unescaped (an exec is not
    // expanded by Kubernetes), the names as arguments.
    let seen = server.seen();
    let helper = patches(&seen)[0]["spec"]["ephemeralContainers"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let resolving = execs_where(&seen, |c| c.contains("getent"));
    assert_eq!(
        resolving,
        [(
            helper,
            format!("sh -c {} sh db cache", fault::resolve::GETENT_SCRIPT)
        )]
    );
    fault::revert(&p, &undo).await.unwrap();
    assert!(state.lock().unwrap().rules.is_empty());
    // Nothing beyond what the network helper needs: exec is already granted.
    assert_granted(&server.seen(), &fault::rbac_rules(&f));

    // A name the pod cannot resolve: refused before any rule, the helper released.
    let nowhere = fault(json!({"network": {
        "delay": "100ms", "duration": "10s", "engine": "nfqueue", "to": {"hosts": ["db", "nowhere"]}
    }}));
    let err = fault::prepare(&p, &nowhere, &t)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`nowhere` does not resolve in pod `api-1` (getent ahostsv4"),
        "{err}"
    );
    // A helper image without getent: refused, saying what the image needs.
    state.lock().unwrap().getent = None;
    let err = fault::prepare(&p, &f, &t).await.unwrap_err().to_string();
    assert!(
        err.contains("exit 127: getent: not found")
            && err.contains("needs `sh` and glibc's `getent`"),
        "{err}"
    );
    assert!(state.lock().unwrap().rules.is_empty());
}

/// A pod whose ephemeral containers run locally (the commands the kubelet makes of their
/// specs); what the models differ in.
trait PodModel: Send + 'static {
    fn containers(&mut self) -> &mut Vec<(String, Value, Container)>;
    /// What an ended helper's exit script did.
    fn settle(&mut self);
    fn pod(&mut self) -> Value;
    /// Starts the container `spec`, whose command the kubelet makes `argv`.
    fn start(&self, spec: &Value, argv: &[String]) -> Container;
    /// An exec into the running container `container`.
    fn exec(&mut self, container: &str, argv: &[String]) -> fake::Answer;

    fn container(&mut self, name: &str) -> Option<&mut Container> {
        self.containers()
            .iter_mut()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, c)| c)
    }

    /// Whether the network helper has ended (its exit script ran).
    fn helper_ended(&mut self) -> bool {
        self.containers()
            .iter_mut()
            .find(|(n, _, _)| n.starts_with("faultline-net-"))
            .is_some_and(|(_, _, c)| c.exited().is_some())
    }
}

/// The API server of a [`PodModel`]: ephemeral container patches, the pod, and exec.
fn pod_handler<S: PodModel>(state: Arc<Mutex<S>>) -> fake::Handler {
    Arc::new(move |s: &Seen| {
        let mut st = state.lock().unwrap();
        st.settle();
        let pod_path = format!("{PODS}/api-1");
        if s.method == "PATCH" && s.path == format!("{pod_path}/ephemeralcontainers") {
            let spec = s.body["spec"]["ephemeralContainers"][0].clone();
            let name = spec["name"].as_str().unwrap().to_string();
            let container = st.start(&spec, &kubelet_command(&spec));
            st.containers().push((name, spec, container));
            return fake::Answer::Json(200, st.pod());
        }
        if s.method == "GET" && s.path == pod_path {
            return fake::Answer::Json(200, st.pod());
        }
        if s.method == "GET" && s.path == format!("{pod_path}/exec") {
            let (container, argv) = (s.container(), s.argv());
            let running = st.container(&container).map(|c| c.exited().is_none());
            if running != Some(true) {
                return not_valid(&container);
            }
            return st.exec(&container, &argv);
        }
        no_route(s)
    })
}

impl PodModel for NfqState {
    fn containers(&mut self) -> &mut Vec<(String, Value, Container)> {
        &mut self.containers
    }

    /// The helper's script ran its `on_exit` as it ended: the qdisc and rules went too.
    fn settle(&mut self) {
        if self.helper_ended() {
            self.qdisc = None;
            self.rules
                .retain(|r| !r.contains("--comment faultline-delayer-"));
        }
    }

    fn pod(&mut self) -> Value {
        let no_faultline = self.no_faultline;
        ephemeral_pod(&mut self.containers, |name| {
            // What containerd reports for an executable the image lacks.
            (no_faultline && name.starts_with("faultline-delayer-")).then(|| {
                json!({"terminated": {"exitCode": 128, "reason": "StartError",
                    "message": "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"faultline\": executable file not found in $PATH: unknown"}})
            })
        })
    }

    fn start(&self, spec: &Value, argv: &[String]) -> Container {
        if argv[0] == "faultline" && self.no_faultline {
            let mut missing = spec.clone();
            missing["command"] = json!(["sh", "-c", "exit 128"]);
            let c = Container::start(&missing);
            std::thread::sleep(Duration::from_millis(100));
            c
        } else if argv[0] == "faultline" {
            // The delayer: its image's `faultline`, modelled by the stand-in.
            start_standin(spec, argv, DELAYER_STANDIN)
        } else {
            Container::start(spec)
        }
    }

    fn exec(&mut self, container: &str, argv: &[String]) -> fake::Answer {
        if container.starts_with("faultline-net-") {
            return nfq_helper_exec(self, container, argv);
        }
        // The delayer's container: the kill script runs there for real.
        exec_beside_pid1(self.container(container).unwrap(), argv)
    }
}

fn nfq_handler(state: Arc<Mutex<NfqState>>) -> fake::Handler {
    pod_handler(state)
}

/// The target pod with `containers` as its ephemeral containers, in the state their
/// processes are in (`broken`: a state the runtime reports instead, by name).
fn ephemeral_pod(
    containers: &mut [(String, Value, Container)],
    broken: impl Fn(&str) -> Option<Value>,
) -> Value {
    let mut pod = pod("api-1", "uid-1");
    let mut specs = Vec::new();
    let mut statuses = Vec::new();
    for (name, spec, c) in containers.iter_mut() {
        specs.push(spec.clone());
        let state = match c.exited() {
            Some(_) if broken(name).is_some() => broken(name).unwrap(),
            Some(code) => json!({"terminated": {"exitCode": code,
                "reason": if code == 0 { "Completed" } else { "Error" }}}),
            None => json!({"running": {"startedAt": "2026-11-30T12:00:00Z"}}),
        };
        statuses.push(json!({"name": name, "ready": false, "restartCount": 0,
            "image": spec["image"], "imageID": "", "state": state}));
    }
    pod["spec"]["ephemeralContainers"] = json!(specs);
    pod["status"]["ephemeralContainerStatuses"] = json!(statuses);
    pod
}

/// `iptables -D SPEC` on a chain listed as `rules` (`-A ...` lines): the rule as listed
/// goes, else iptables' own complaint.
fn iptables_delete(rules: &mut Vec<String>, spec: &str) -> fake::Answer {
    let rule = format!("-A {spec}");
    match rules.iter().position(|r| *r == rule) {
        Some(i) => {
            rules.remove(i);
            fake::Answer::exec_ok("")
        }
        None => fake::Answer::exec_exit(
            1,
            "iptables: Bad rule (does a matching rule exist in that chain?).\n",
        ),
    }
}

/// A faultline subcommand as PID 1 of the container `spec`, modelled by the shell
/// `standin`, given the real arguments (`argv` as the kubelet expands them).
fn start_standin(spec: &Value, argv: &[String], standin: &str) -> Container {
    let mut c = spec.clone();
    let mut command = vec![json!("sh"), json!("-c"), json!(standin)];
    command.extend(argv.iter().map(|a| json!(a.replace('$', "$$"))));
    c["command"] = json!(command);
    Container::start(&c)
}

/// An exec that may end the container's PID 1 (a kill script), run for real: as PID 1
/// ends, the kernel ends the exec too (exit 137, empty output).
fn exec_beside_pid1(c: &mut Container, argv: &[String]) -> fake::Answer {
    let out = c.exec(argv);
    let start = std::time::Instant::now();
    while c.exited().is_none() && start.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(10));
    }
    if c.exited().is_some() {
        return fake::Answer::exec_exit(137, "");
    }
    fake::Answer::exec_ok(&String::from_utf8_lossy(&out.stdout))
}

async fn nfq_platform(state: &Arc<Mutex<NfqState>>) -> (KubernetesPlatform, fake::Server) {
    let server = fake::start(nfq_handler(state.clone())).await;
    let p = on_fake(&server, spec(), Some("registry.local/faultline-helper:1"));
    (p, server)
}

/// The ephemeral container patches the API server saw, by container name.
fn patches(seen: &[Seen]) -> Vec<Value> {
    seen.iter()
        .filter(|s| s.method == "PATCH")
        .map(|s| s.body.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_delay_on_a_node_without_netem_runs_the_delayer_in_an_ephemeral_container() {
    let state = Arc::new(Mutex::new(NfqState::default()));
    let (p, server) = nfq_platform(&state).await;
    let t = target("api-1", "uid-1");
    let f = fault(json!({"network": {"delay": "100ms", "duration": "10s"}}));
    assert_eq!(fault::preflight(&f, &p).await, Ok(()));

    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let fault::UndoRecord::RemoveQdisc { qdisc, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    let d = qdisc
        .delayer
        .clone()
        .expect("a delayer is ready in case netem is missing");
    assert!(d.marker.starts_with("faultline-delayer-"), "{d:?}");
    assert_eq!(
        d.placement,
        faultline::platform::Placement::InTarget {
            net_admin: true,
            image: Some("registry.local/faultline-helper:1".into())
        }
    );
    fault::inject(&p, &f, &t, Some(&undo)).await.unwrap();

    // The kernel: faultline's rule sends every outgoing packet to the delayer's queue,
    // with --queue-bypass; no qdisc (a delay alone needs no tc).
    let rule = format!(
        "-A OUTPUT -o eth0 -m comment --comment {} -j NFQUEUE --queue-num {} --queue-bypass",
        d.marker, d.queue
    );
    {
        let mut st = state.lock().unwrap();
        assert_eq!(st.rules, vec![rule.clone()]);
        assert_eq!(st.qdisc, None);
        assert_eq!(st.packet(), "held by the delayer");
        assert_eq!(st.bound(), vec![d.queue.to_string()]);
    }

    // Two ephemeral containers: the network helper, then the delayer.
    let seen = server.seen();
    let patches = patches(&seen);
    assert_eq!(patches.len(), 2, "{patches:?}");
    let helper = patches[0]["spec"]["ephemeralContainers"][0].clone();
    let helper_name = helper["name"].as_str().unwrap().to_string();
    assert!(helper_name.starts_with("faultline-net-"));
    assert_eq!(helper["image"], "registry.local/faultline-helper:1");
    // After the kubelet's expansion the helper's script deletes the rule too as it ends:
    // `$rule` reaches the shell as written.
    let script = kubelet_command(&helper)[2].clone();
    let (m1, m2) = d.marker.split_at(d.marker.len() / 2);
    assert!(
        script.contains(&format!(
            "tc qdisc del dev eth0 root handle fa17: 2>/dev/null; m1={m1}; m2={m2}; iptables -w -S OUTPUT 2>/dev/null | grep -F -e \"--comment $m1$m2 \" | while read -r _ rule; do iptables -w -D $rule; done; exit 0' TERM INT"
        )),
        "{script}"
    );
    // Stopping the delayer by its marker must never match the helper's shell (one
    // process namespace with `shareProcessNamespace`).
    assert!(!script.contains(&d.marker), "{script}");
    let mut delayer = patches[1].clone();
    let container = delayer["spec"]["ephemeralContainers"][0].take();
    let argv = kubelet_command(&container);
    let until: u64 = argv[11].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now + 15..=now + 21).contains(&until),
        "the delayer's own deadline is the duration plus a margin: {until} vs now {now}"
    );
    assert_eq!(
        argv,
        [
            "faultline",
            "delayer",
            "--queue",
            &d.queue.to_string(),
            "--delay-us",
            "100000",
            "--jitter-us",
            "0",
            "--loss",
            "0",
            "--until",
            &until.to_string(),
            "--marker",
            &d.marker
        ]
    );
    assert_eq!(container["command"], json!(argv), "nothing to escape");
    let mut container = container;
    container.as_object_mut().unwrap().remove("command");
    delayer["spec"]["ephemeralContainers"] = json!([container]);
    assert_eq!(
        delayer,
        json!({
            "metadata": {"uid": "uid-1"},
            "spec": {"ephemeralContainers": [{
                "name": d.marker,
                "image": "registry.local/faultline-helper:1",
                "imagePullPolicy": "IfNotPresent",
                "stdin": false,
                "tty": false,
                "securityContext": {"runAsUser": 0, "runAsNonRoot": false, "capabilities": {"add": ["NET_ADMIN"]}}
            }]}
        })
    );
    let cat = "cat /proc/net/netfilter/nfnetlink_queue".to_string();
    let add = format!(
        "iptables -w -I OUTPUT -o eth0 -m comment --comment {} -j NFQUEUE --queue-num {} --queue-bypass",
        d.marker, d.queue
    );
    let on = |c: &str| (helper_name.clone(), c.to_string());
    assert_eq!(
        execs(&seen),
        vec![
            on(&cat),
            on("tc qdisc show dev eth0"),
            on("tc qdisc add dev eth0 root handle fa17: netem delay 100ms"),
            on("ip link show dev eth0"),
            on(&cat),
            on(&add),
        ]
    );

    let before = seen.len();
    fault::revert(&p, &undo).await.unwrap();
    {
        let mut st = state.lock().unwrap();
        assert!(st.rules.is_empty(), "{:?}", st.rules);
        assert_eq!(st.packet(), "sent");
        assert_eq!(
            st.delayer().unwrap().exited(),
            Some(0),
            "the delayer ended by its SIGTERM"
        );
        assert!(st.container(&helper_name).unwrap().exited().is_some());
    }
    assert_eq!(
        faultline::platform::host::pids_with_marker(&d.marker),
        Vec::<i32>::new()
    );
    let seen = server.seen();
    let reverted: Vec<(String, String)> = execs(&seen[before..]);
    let del = add.replace(" -I ", " -D ");
    assert_eq!(
        reverted[..5],
        [
            on("tc qdisc show dev eth0"),
            on("iptables -w -S OUTPUT"),
            on(&del),
            on("iptables -w -S OUTPUT"),
            on("iptables -w -S OUTPUT"),
        ]
    );
    assert_eq!(
        reverted[5].0, d.marker,
        "the stop runs in the delayer's container: {reverted:?}"
    );
    assert!(
        reverted[5].1.contains("kill -TERM"),
        "SIGTERM first: {:?}",
        reverted[5]
    );
    assert_eq!(
        reverted[6..],
        [
            on("tc qdisc show dev eth0"),
            on("tc qdisc show dev eth0"),
            on("sh -c read pid < /tmp/faultline-net.pid && kill -TERM \"$pid\""),
        ]
    );
    assert_granted(&seen, &fault::rbac_rules(&f));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_faultline_in_the_helper_image_the_fallback_says_what_the_image_needs() {
    let state = Arc::new(Mutex::new(NfqState {
        no_faultline: true,
        ..Default::default()
    }));
    let (p, server) = nfq_platform(&state).await;
    let t = target("api-1", "uid-1");
    let f = fault(json!({"network": {"delay": "100ms", "duration": "10s"}}));
    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let err = fault::inject(&p, &f, &t, Some(&undo))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("the kernel of `api-1` has no netem, and the nfqueue engine that replaces it failed: the nfqueue delayer in pod `api-1` ended at once (StartError, exit 128)"),
        "{err}"
    );
    assert!(
        err.contains(
            "needs `faultline`, `tc` and `iptables` (the `helper` target of deploy/Dockerfile)"
        ),
        "{err}"
    );
    // Nothing was left: no rule, no qdisc; revert (what `release` and `recover` do) ends.
    {
        let st = state.lock().unwrap();
        assert!(st.rules.is_empty() && st.qdisc.is_none());
    }
    assert_eq!(fault::revert(&p, &undo).await, Ok(()));
    assert_granted(&server.seen(), &fault::rbac_rules(&f));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_delayer_lets_traffic_flow_and_revert_still_succeeds() {
    let state = Arc::new(Mutex::new(NfqState::default()));
    let (p, server) = nfq_platform(&state).await;
    let t = target("api-1", "uid-1");
    let f = fault(
        json!({"network": {"delay": "50ms", "jitter": "10ms", "loss": 1, "duration": "10s", "engine": "nfqueue"}}),
    );
    assert_eq!(fault::preflight(&f, &p).await, Ok(()));
    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let fault::UndoRecord::RemoveQdisc { qdisc, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    let d = qdisc.delayer.clone().unwrap();
    fault::inject(&p, &f, &t, Some(&undo)).await.unwrap();
    assert_eq!(state.lock().unwrap().packet(), "held by the delayer");

    // The delayer dies (OOM-killed, evicted): its queue is unbound; the rule stays.
    {
        let mut st = state.lock().unwrap();
        let delayer = st.delayer().unwrap();
        let group = nix::unistd::Pid::from_raw(delayer.child.id() as i32);
        nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).unwrap();
        let start = std::time::Instant::now();
        while delayer.exited().is_none() {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(st.bound().is_empty());
        assert_eq!(
            st.rules,
            vec![format!(
                "-A OUTPUT -o eth0 -m comment --comment {} -j NFQUEUE --queue-num {} --queue-bypass",
                d.marker, d.queue
            )]
        );
        // Fail open: with --queue-bypass a packet for an unbound queue goes out.
        assert_eq!(st.packet(), "sent");
    }

    // Revert removes the rule, finds the delayer's container terminated, and ends.
    assert_eq!(fault::revert(&p, &undo).await, Ok(()));
    {
        let mut st = state.lock().unwrap();
        assert!(st.rules.is_empty());
        let killed = st.delayer().unwrap().exited();
        assert!(killed.is_some_and(|code| code != 0), "{killed:?}");
    }
    let seen = server.seen();
    assert!(
        !execs(&seen).iter().any(|(c, _)| *c == d.marker),
        "nothing is exec'd into a terminated container"
    );
    assert_granted(&seen, &fault::rbac_rules(&f));
}

// ---------------------------------------------------------------------------------------
// The binary in a fresh process: connect from a kubeconfig, reconnect from the journal.

fn kubeconfig(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{url}\"}}\nusers:\n- name: fake\n  user: {{token: not-a-secret}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake, namespace: shop}}\ncurrent-context: fake\n"
        ),
    )
    .unwrap();
    path
}

async fn faultline(
    args: Vec<String>,
    envs: Vec<(&'static str, std::path::PathBuf)>,
) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_faultline"));
        cmd.args(&args)
            .env_remove("FAULTLINE_TC_IMAGE")
            .env_remove("KUBECONFIG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

/// `faultline run` of the experiment `yaml` against a fake API server with `handler`
/// (through a kubeconfig, its own state directory), which must exit with `code`: its
/// stderr, JSON report and the server.
async fn run_experiment(
    handler: fake::Handler,
    yaml: &str,
    code: i32,
) -> (String, Value, fake::Server) {
    let server = fake::start(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("experiment.yaml");
    std::fs::write(&file, yaml).unwrap();
    let report = dir.path().join("r.json");
    let out = faultline(
        vec![
            "run".into(),
            file.display().to_string(),
            "--report".into(),
            format!("json:{}", report.display()),
        ],
        vec![
            ("KUBECONFIG", kubeconfig(dir.path(), &server.url)),
            ("FAULTLINE_STATE_DIR", dir.path().join("state")),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    let r = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (stderr, r, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_kills_a_pod_found_through_the_kubeconfig() {
    let deleted: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let handler: fake::Handler = Arc::new({
        let deleted = deleted.clone();
        move |s: &Seen| {
            let gone = deleted.lock().unwrap().clone();
            if s.method == "GET" && s.path == PODS {
                let items = [("api-1", "uid-1"), ("api-2", "uid-2")]
                    .into_iter()
                    .filter(|(n, _)| gone.as_deref() != Some(*n))
                    .map(|(n, u)| pod(n, u))
                    .collect();
                return fake::Answer::Json(200, pod_list(items));
            }
            if let Some(name) = s.path.strip_prefix(&format!("{PODS}/")) {
                if s.method == "DELETE" && gone.is_none() {
                    *deleted.lock().unwrap() = Some(name.to_string());
                    return fake::Answer::Json(200, pod(name, "uid"));
                }
            }
            fake::Answer::Json(404, not_found("x"))
        }
    });
    let (_, r, server) = run_experiment(
        handler,
        "version: 1\nname: kill-one\ntarget:\n  kubernetes: {namespace: shop, selector: app=api}\n  select: {mode: one, seed: 1}\nsteady_state:\n  - name: ready\n    kubernetes: {namespace: shop, selector: app=api, ready: \">= 1\"}\nfaults:\n  - kill: {grace_period: 5s}\nrecovery: {timeout: 5s, interval: 100ms}\n",
        0,
    )
    .await;
    assert_eq!(r["verdict"], "passed");
    assert_eq!(
        r["phases"]["before"]["probes"][0]["detail"],
        "2 ready (want >= 1)"
    );
    assert_eq!(
        r["phases"]["after"]["probes"][0]["detail"],
        "1 ready (want >= 1)"
    );
    let killed = deleted.lock().unwrap().clone().unwrap();
    let uid = if killed == "api-1" { "uid-1" } else { "uid-2" };
    assert_eq!(
        r["targets"][0],
        json!({"platform": "kubernetes", "id": uid, "name": killed})
    );
    let seen = server.seen();
    let delete = seen.iter().find(|s| s.method == "DELETE").unwrap();
    assert_eq!(delete.path, format!("{PODS}/{killed}"));
    assert_eq!(
        delete.pairs(),
        vec![("gracePeriodSeconds".to_string(), "5".to_string())]
    );
    assert_eq!(
        delete.body,
        json!({"gracePeriodSeconds": 5, "preconditions": {"uid": uid}})
    );
    let kill = fault(json!({"kill": {}}));
    let mut allowed = rbac::for_targets();
    allowed.extend(fault::rbac_rules(&kill));
    assert_granted(&seen, &allowed);
}

/// What a user saw on a real cluster: `cpu_stress` without a helper image fails, and its
/// release then exec'd into the container that was never created, which the API server
/// answers with 400, printed as a warning. Through the binary: the fault's error names
/// what to set, and nothing else is said about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_stress_without_an_image_fails_without_a_spurious_warning() {
    let state = Arc::new(Mutex::new(StressState::default()));
    let inner = stress_handler(state.clone());
    let handler: fake::Handler = Arc::new(move |s: &Seen| {
        if s.method == "GET" && s.path == PODS {
            return fake::Answer::Json(200, pod_list(vec![pod("api-1", "uid-1")]));
        }
        inner(s)
    });
    let (stderr, r, server) = run_experiment(
        handler,
        "version: 1\nname: cpu\ntarget:\n  kubernetes: {namespace: shop, selector: app=api}\nfaults:\n  - cpu_stress: {duration: 2s}\n",
        4,
    )
    .await;
    let error = r["faults"][0]["error"].as_str().unwrap();
    assert!(error.contains("--tc-image"), "{error}");
    for spurious in ["400", "BadRequest", "is not valid for pod", "WARN"] {
        assert!(!stderr.contains(spurious), "`{spurious}` in: {stderr}");
    }
    assert_eq!(execs(&server.seen()), Vec::<(String, String)>::new());
}

/// Mixed platforms in one run: a real Docker container paused while, 500 ms in, a pod on
/// the fake API server is deleted; each fault on its own target, platform and schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_a_docker_and_a_kubernetes_target() {
    let Some(mut fleet) = support::docker_fleet("mixed") else {
        return;
    };
    let web = fleet.web(&["--label", "fltest.role=api"]);
    let deleted: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let handler: fake::Handler = Arc::new({
        let deleted = deleted.clone();
        move |s: &Seen| {
            if s.method == "GET" && s.path == PODS {
                let gone = deleted.lock().unwrap().clone();
                let items = [("cache-1", "uid-1")]
                    .into_iter()
                    .filter(|(n, _)| gone.as_deref() != Some(*n))
                    .map(|(n, u)| pod(n, u))
                    .collect();
                return fake::Answer::Json(200, pod_list(items));
            }
            if s.method == "DELETE" && s.path == format!("{PODS}/cache-1") {
                *deleted.lock().unwrap() = Some("cache-1".into());
                return fake::Answer::Json(200, pod("cache-1", "uid-1"));
            }
            fake::Answer::Json(404, not_found("cache-1"))
        }
    });
    let server = fake::start(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let exp = support::Experiment::new("mixed")
        .target_on("api", &fleet, "api", "{mode: one}")
        .target(
            "cache",
            "kubernetes: {namespace: shop, selector: app=cache}",
        )
        .fault("pause: {target: api, duration: 2s}")
        .fault("kill: {target: cache, after: 500ms}");
    let state = support::StateDir::new();
    let run = support::Run::experiment(&exp)
        .json_report()
        .state(&state)
        .env("KUBECONFIG", kubeconfig(dir.path(), &server.url));
    let web_seen = web.clone();
    let (out, paused_while_deleted) = tokio::task::spawn_blocking(move || {
        let running = run.spawn();
        let paused = support::wait_until(Duration::from_secs(15), || support::paused(&web_seen));
        let out = running.wait();
        (out, paused)
    })
    .await
    .unwrap();
    out.expect(0);
    assert!(
        paused_while_deleted,
        "docker inspect never showed the container paused"
    );
    assert!(
        !support::paused(&web),
        "the container is unpaused after the run"
    );
    assert_eq!(deleted.lock().unwrap().as_deref(), Some("cache-1"));
    let r = out.report();
    let fault_of = |kind: &str| {
        r["faults"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["type"] == kind)
            .unwrap()
            .clone()
    };
    let (pause, kill) = (fault_of("pause"), fault_of("kill"));
    assert_eq!(
        (&pause["target_name"], &pause["target"], &pause["status"]),
        (&json!("api"), &json!(web), &json!("reverted"))
    );
    assert_eq!(
        (&kill["target_name"], &kill["target"], &kill["status"]),
        (&json!("cache"), &json!("cache-1"), &json!("completed"))
    );
    let platforms: BTreeSet<(String, String)> = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["target_name"].to_string(), t["platform"].to_string()))
        .collect();
    assert_eq!(
        platforms,
        [
            (r#""api""#.to_string(), r#""docker""#.to_string()),
            (r#""cache""#.to_string(), r#""kubernetes""#.to_string())
        ]
        .into()
    );
    assert!(state.is_clean());
    // The Kubernetes side made only the calls its Role grants.
    let mut allowed = rbac::for_targets();
    allowed.extend(fault::rbac_rules(&fault(json!({"kill": {}}))));
    assert_granted(&server.seen(), &allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_reconnects_to_the_recorded_context_and_namespace() {
    let state = Arc::new(Mutex::new(NetState::running("faultline-net-0000beef")));
    let pause_helper_gone = Arc::new(Mutex::new(false));
    let net = net_handler(state.clone());
    let handler: fake::Handler = Arc::new({
        let gone = pause_helper_gone.clone();
        move |s: &Seen| {
            if s.path == HELPER {
                return match s.method.as_str() {
                    "DELETE" => {
                        *gone.lock().unwrap() = true;
                        fake::Answer::Json(200, json!({}))
                    }
                    _ => fake::Answer::Json(404, not_found("faultline-pause-uid-1")),
                };
            }
            net(s)
        }
    });
    let server = fake::start(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &server.url);
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    // A run that died: its process is gone.
    let dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let t = json!({"platform": "kubernetes", "id": "uid-1", "name": "api-1"});
    let entries = [
        json!({"op": "open", "id": "r1-0", "at": "2026-11-30T12:00:00Z", "run": "r1", "pid": dead_pid,
               "experiment": "x", "fault": "pause for 20s",
               "platform": {"kind": "kubernetes", "endpoint": "shop@fake"},
               "undo": {"undo": "unpause", "target": t}}),
        json!({"op": "open", "id": "r1-1", "at": "2026-11-30T12:00:00Z", "run": "r1", "pid": dead_pid,
               "experiment": "x", "fault": "network delay 100ms on eth0 for 10s",
               "platform": {"kind": "kubernetes", "endpoint": "shop@fake"},
               "undo": {"undo": "remove_qdisc", "target": t,
                        "qdisc": {"interface": "eth0", "access": {"via": "sidecar", "helper": "api-1/faultline-net-0000beef", "image": "registry.local/tc:1"}}}}),
    ];
    let text: String = entries.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(state_dir.join("journal.jsonl"), text).unwrap();
    let out = faultline(
        vec!["recover".into()],
        vec![
            ("KUBECONFIG", config),
            ("FAULTLINE_STATE_DIR", state_dir.clone()),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(*pause_helper_gone.lock().unwrap());
    {
        let st = state.lock().unwrap();
        assert!(!st.qdisc && st.ended, "{stdout}\n{stderr}");
    }
    let seen = server.seen();
    assert_eq!(
        execs(&seen).into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
        vec![
            "tc qdisc show dev eth0",
            "tc qdisc del dev eth0 root handle fa17:",
            "tc qdisc show dev eth0",
            "sh -c read pid < /tmp/faultline-net.pid && kill -TERM \"$pid\"",
        ]
    );
    assert!(
        seen.iter()
            .any(|s| s.method == "DELETE" && s.path == HELPER)
    );
}

// ---------------------------------------------------------------------------------------
// `faultline doctor`: the API server answers, and (given a file) allows every call.

const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

fn version() -> Value {
    json!({"major": "1", "minor": "24", "gitVersion": "v1.24.17", "gitCommit": "22a9682c",
        "gitTreeState": "clean", "buildDate": "2023-08-23T23:37:25Z", "goVersion": "go1.20.7",
        "compiler": "gc", "platform": "linux/amd64"})
}

/// An API server whose authorizer allows everything but `denied` (`verb resource[/sub]`).
fn authorizer(denied: &'static [&'static str]) -> fake::Handler {
    Arc::new(move |s: &Seen| {
        if s.method == "GET" && s.path == "/version" {
            return fake::Answer::Json(200, version());
        }
        if s.method == "POST" && s.path == SSAR {
            let a = &s.body["spec"]["resourceAttributes"];
            let mut resource = a["resource"].as_str().unwrap_or("").to_string();
            if let Some(sub) = a["subresource"].as_str().filter(|s| !s.is_empty()) {
                resource = format!("{resource}/{sub}");
            }
            let asked = format!("{} {resource}", a["verb"].as_str().unwrap_or(""));
            let allowed = !denied.contains(&asked.as_str());
            let mut answer = s.body.clone();
            answer["status"] = if allowed {
                json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"faultline/shop\""})
            } else {
                json!({"allowed": false})
            };
            return fake::Answer::Json(201, answer);
        }
        fake::Answer::Json(404, status(404, "NotFound", "no route", "", ""))
    })
}

fn doctor_file(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("latency.yaml");
    std::fs::write(
        &file,
        "version: 1\nname: latency\ntarget:\n  kubernetes: {namespace: shop, selector: app=api}\nsteady_state:\n  - name: available\n    kubernetes: {namespace: shop, deployment: api, available: \">= 1\"}\nfaults:\n  - network: {delay: 100ms, duration: 10s}\n",
    )
    .unwrap();
    file
}

async fn doctor(args: &[&str], envs: Vec<(&'static str, std::path::PathBuf)>) -> (i32, String) {
    let mut argv = vec!["doctor".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let out = faultline(argv, envs).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_file_asks_the_api_server_for_each_permission_and_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let file = doctor_file(dir.path());
    let file_arg = file.display().to_string();

    // Everything granted: exit 0, and nothing of Docker is checked for a Kubernetes file.
    let server = fake::start(authorizer(&[])).await;
    let (code, out) = doctor(
        &[&file_arg],
        vec![("KUBECONFIG", kubeconfig(dir.path(), &server.url))],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("[ok  ] Kubernetes (context `fake`): API server v1.24.17 answers"),
        "{out}"
    );
    assert!(
        out.contains("[ok  ] Kubernetes permissions in namespace `shop`: all 6 allowed"),
        "{out}"
    );
    assert!(!out.contains("Docker"), "{out}");
    // One review per permission `faultline rbac` grants, each in the experiment's namespace.
    let mut asked: Vec<String> = server
        .seen()
        .iter()
        .filter(|s| s.path == SSAR)
        .map(|s| {
            let a = &s.body["spec"]["resourceAttributes"];
            assert_eq!(a["namespace"], "shop");
            assert_eq!(s.body["kind"], "SelfSubjectAccessReview");
            format!(
                "{} {} {}{}",
                a["group"].as_str().unwrap(),
                a["verb"].as_str().unwrap(),
                a["resource"].as_str().unwrap(),
                a["subresource"]
                    .as_str()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    asked.sort();
    assert_eq!(
        asked,
        [
            " create pods/exec",
            " get pods",
            " get pods/exec",
            " list pods",
            " patch pods/ephemeralcontainers",
            "apps get deployments",
        ]
    );

    // One verb denied: named, with what needs it, and the exit is 1.
    let server = fake::start(authorizer(&["patch pods/ephemeralcontainers"])).await;
    let (code, out) = doctor(
        &[&file_arg],
        vec![("KUBECONFIG", kubeconfig(dir.path(), &server.url))],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[FAIL] Kubernetes permissions in namespace `shop`: 1 of 6 not allowed (context `fake`): `patch` `pods/ephemeralcontainers` (for network)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("`faultline rbac {file_arg}`")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_fails_for_an_api_server_that_does_not_listen_or_rejects_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = doctor_file(dir.path());
    let file_arg = file.display().to_string();

    // Nothing listens on the kubeconfig's server.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    // Without a file: the current context's API server is reached, not only its kubeconfig read.
    let (code, out) = doctor(&[], vec![("KUBECONFIG", kubeconfig(dir.path(), &closed))]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[FAIL] Kubernetes (context `fake`)"), "{out}");

    let (code, out) = doctor(
        &[&file_arg],
        vec![("KUBECONFIG", kubeconfig(dir.path(), &closed))],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "[FAIL] Kubernetes (context `fake`): cannot reach the Kubernetes API (context `fake`)"
        ),
        "{out}"
    );

    // The token is not accepted: 401 on everything, /version included.
    let server = fake::start(Arc::new(|_: &Seen| {
        fake::Answer::Json(401, status(401, "Unauthorized", "Unauthorized", "", ""))
    }))
    .await;
    let (code, out) = doctor(
        &[&file_arg],
        vec![("KUBECONFIG", kubeconfig(dir.path(), &server.url))],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[FAIL] Kubernetes (context `fake`): the Kubernetes API (context `fake`) rejected faultline's credentials: Unauthorized"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_fails_when_docker_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = fake::start(authorizer(&[])).await;
    let (code, out) = doctor(
        &[],
        vec![
            ("KUBECONFIG", kubeconfig(dir.path(), &server.url)),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock".into()),
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[FAIL] Docker:"), "{out}");
    assert!(out.contains("[ok  ] Kubernetes (context `fake`)"), "{out}");
}

// ---------------------------------------------------------------------------------------
// Examples, `faultline rbac`, deploy/

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn k8s_examples() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("k8s-") && n.ends_with(".yaml")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_kubernetes_example_has_the_modeline_and_validates() {
    let files = k8s_examples();
    assert!(files.len() >= 5, "{files:?}");
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert_eq!(
            text.lines().next(),
            Some("# yaml-language-server: $schema=../schema/faultline.schema.json"),
            "{}",
            f.display()
        );
    }
    assert_cmd::Command::cargo_bin("faultline")
        .unwrap()
        .arg("validate")
        .args(&files)
        .assert()
        .success();
}

/// The Role's rules of `faultline rbac FILE`: `group resource: verbs` per rule, and the
/// documents' kinds.
fn rbac_rules(args: &[&str]) -> (Vec<String>, Vec<String>) {
    let out = assert_cmd::Command::cargo_bin("faultline")
        .unwrap()
        .current_dir(root())
        .arg("rbac")
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let kinds = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    let mut rules = Vec::new();
    for d in docs.iter().filter(|d| d["kind"] == "Role") {
        for r in d["rules"].as_array().unwrap() {
            let list = |k: &str| {
                r[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            rules.push(format!(
                "{} {} {}: {}",
                d["metadata"]["namespace"].as_str().unwrap(),
                list("apiGroups"),
                list("resources"),
                list("verbs")
            ));
        }
        // Every Role is real Kubernetes RBAC.
        let _: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(d.clone()).unwrap();
    }
    (kinds, rules)
}

#[test]
fn rbac_grants_exactly_what_each_example_needs() {
    let cases: &[(&str, &[&str])] = &[
        (
            "experiments/k8s-pod-kill.yaml",
            &["shop  pods: delete,get,list", "shop apps deployments: get"],
        ),
        (
            "experiments/k8s-graceful-kill.yaml",
            &["shop  pods: delete,get,list"],
        ),
        (
            "experiments/k8s-pause.yaml",
            &["shop  pods: create,delete,get,list"],
        ),
        (
            "experiments/k8s-latency.yaml",
            &[
                "shop  pods: get,list",
                "shop  pods/ephemeralcontainers: patch",
                "shop  pods/exec: create,get",
            ],
        ),
        (
            "experiments/k8s-maintenance-mode.yaml",
            &["shop  pods: get,list", "shop  pods/exec: create,get"],
        ),
        (
            "experiments/k8s-cache-degraded.yaml",
            &[
                "data  pods: get,list",
                "data  pods/ephemeralcontainers: patch",
                "data  pods/exec: create,get",
                "data apps deployments: get",
                "shop  pods: list",
                "shop apps deployments: get",
            ],
        ),
        (
            // Its pause is on the Docker target: only the network fault's needs.
            "experiments/k8s-cache-docker-api.yaml",
            &[
                "shop  pods: get,list",
                "shop  pods/ephemeralcontainers: patch",
                "shop  pods/exec: create,get",
            ],
        ),
    ];
    let examples: Vec<String> = k8s_examples()
        .iter()
        .map(|p| format!("experiments/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    let covered: Vec<String> = cases.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        examples,
        {
            let mut c = covered.clone();
            c.sort();
            c
        },
        "every example has a case"
    );
    for (file, want) in cases {
        let (kinds, rules) = rbac_rules(&[file]);
        assert_eq!(rules, *want, "{file}");
        let namespaces = want
            .iter()
            .map(|w| w.split(' ').next().unwrap())
            .collect::<BTreeSet<_>>();
        assert_eq!(
            kinds.len(),
            namespaces.len() * 2,
            "{file}: a Role and a RoleBinding per namespace"
        );
    }
}

/// On Kubernetes a kill deletes the pod: the plan says so, and what the grace period means.
#[test]
fn the_plan_calls_a_kubernetes_kill_a_pod_delete() {
    let plan = |file: &str| {
        let out = assert_cmd::Command::cargo_bin("faultline")
            .unwrap()
            .current_dir(root())
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .args(["plan", file])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let forced = plan("experiments/k8s-pod-kill.yaml");
    assert!(
        forced.contains("fault 1: delete pod (grace 0 s, force), every 10s for 1m"),
        "{forced}"
    );
    let graceful = plan("experiments/k8s-graceful-kill.yaml");
    assert!(
        graceful.contains(
            "fault 1: delete pod (grace 30s: the image's stop signal, SIGKILL after 30s)"
        ),
        "{graceful}"
    );
    assert!(!format!("{forced}{graceful}").contains("kill with"));
}

#[test]
fn rbac_binds_the_given_service_account_and_refuses_docker_files() {
    let out = assert_cmd::Command::cargo_bin("faultline")
        .unwrap()
        .current_dir(root())
        .args([
            "rbac",
            "experiments/k8s-pause.yaml",
            "--service-account",
            "chaos/runner",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let docs: Vec<Value> = serde_saphyr::from_multiple(std::str::from_utf8(&out).unwrap()).unwrap();
    let binding = docs.iter().find(|d| d["kind"] == "RoleBinding").unwrap();
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "runner", "namespace": "chaos"}])
    );
    assert_eq!(
        binding["roleRef"]["name"],
        "faultline-api-survives-a-frozen-replica"
    );
    let _: k8s_openapi::api::rbac::v1::RoleBinding =
        serde_json::from_value(binding.clone()).unwrap();

    assert_cmd::Command::cargo_bin("faultline")
        .unwrap()
        .current_dir(root())
        .args(["rbac", "experiments/web-pause.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "nothing in it runs on Kubernetes",
        ));
}

#[test]
fn deploy_manifests_match_their_sources() {
    let deploy = root().join("deploy");
    // The checked-in RBAC is exactly what `faultline rbac` derives for the scenario.
    let out = assert_cmd::Command::cargo_bin("faultline")
        .unwrap()
        .current_dir(&deploy)
        .args([
            "rbac",
            "experiments/scenario.yaml",
            "--service-account",
            "faultline/faultline",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        std::fs::read_to_string(deploy.join("rbac.yaml")).unwrap(),
        "regenerate deploy/rbac.yaml (see deploy/README.md)"
    );
    // The ConfigMap carries exactly the experiment files.
    let cm: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(deploy.join("configmap.yaml")).unwrap())
            .unwrap();
    let data = cm["data"].as_object().unwrap();
    let mut files: Vec<String> = std::fs::read_dir(deploy.join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(data.keys().cloned().collect::<Vec<_>>(), files);
    for f in &files {
        assert_eq!(
            data[f].as_str().unwrap(),
            std::fs::read_to_string(deploy.join("experiments").join(f)).unwrap(),
            "deploy/configmap.yaml's `{f}` differs from deploy/experiments/{f} (see deploy/README.md)"
        );
    }
    assert_cmd::Command::cargo_bin("faultline")
        .unwrap()
        .current_dir(&deploy)
        .args(["validate", "experiments/scenario.yaml"])
        .assert()
        .success();
    // The CronJob runs the scenario under the service account, and faultline's own pod is
    // never a target.
    let cron: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(deploy.join("cronjob.yaml")).unwrap())
            .unwrap();
    let pod = &cron["spec"]["jobTemplate"]["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["faultline.protected"], "true");
    assert_eq!(pod["spec"]["serviceAccountName"], "faultline");
    let args = &pod["spec"]["containers"][0]["args"];
    assert_eq!(args[0], "gameday");
    assert_eq!(args[1], "/experiments/scenario.yaml");
    let _: k8s_openapi::api::batch::v1::CronJob = serde_json::from_value(cron.clone()).unwrap();
}

/// How the network fault asks for the target's network namespace on `eth0`.
fn netns(
    strategy: NetworkStrategy,
    image: Option<&'static str>,
    lifetime: Duration,
) -> faultline::platform::NetnsRequest<'static> {
    faultline::platform::NetnsRequest {
        strategy,
        image,
        lifetime,
        on_exit: "tc qdisc del dev eth0 root handle fa17: 2>/dev/null".into(),
    }
}

// Faults that exec into the target container: disk_fill, kill {process}. The exec runs
// for real here, as the container runtime would run it, with the container's /fill in a
// temporary directory.

/// A pod `api-1` whose exec runs locally, with `/fill` mapped to `fill`.
fn exec_handler(fill: std::path::PathBuf) -> fake::Handler {
    Arc::new(move |s: &Seen| {
        let pod_path = format!("{PODS}/api-1");
        if s.method == "GET" && s.path == pod_path {
            return fake::Answer::Json(200, pod("api-1", "uid-1"));
        }
        if s.method == "GET" && s.path == format!("{pod_path}/exec") {
            let argv: Vec<String> = s
                .argv()
                .iter()
                .map(|v| v.replace("/fill", fill.to_str().unwrap()))
                .collect();
            let out = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .output()
                .unwrap();
            return match out.status.code() {
                Some(0) => fake::Answer::Exec {
                    stdout: String::from_utf8_lossy(&out.stdout).into(),
                    stderr: String::from_utf8_lossy(&out.stderr).into(),
                    status: json!({"metadata": {}, "status": "Success"}),
                },
                code => fake::Answer::exec_exit(
                    code.unwrap_or(128),
                    &String::from_utf8_lossy(&out.stderr),
                ),
            };
        }
        no_route(s)
    })
}

/// The pod of [`exec_handler`] on the fake API server, its `/fill` in a temporary directory.
async fn exec_pod() -> (tempfile::TempDir, fake::Server, KubernetesPlatform) {
    let fill = tempfile::tempdir().unwrap();
    let server = fake::start(exec_handler(fill.path().to_path_buf())).await;
    let p = on_fake(&server, spec(), None);
    (fill, server, p)
}

/// Exactly the rules of a fault that only execs into the target: no ephemeral container,
/// no pod created or deleted.
fn assert_exec_only(f: &Fault) {
    assert_eq!(
        fault::rbac_rules(f)
            .iter()
            .map(|p| (p.resource, p.verb))
            .collect::<Vec<_>>(),
        [
            ("pods", "get"),
            ("pods/exec", "create"),
            ("pods/exec", "get")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_fill_on_a_pod_writes_and_removes_its_file_through_exec() {
    let (fill, server, p) = exec_pod().await;
    let t = target("api-1", "uid-1");
    let f = fault(json!({"disk_fill": {"size": "3MiB", "path": "/fill", "duration": "10s"}}));
    assert_eq!(fault::preflight(&f, &p).await, Ok(()));

    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let fault::UndoRecord::RemoveFile { fill: record, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    assert!(
        record.file.starts_with("/fill/.faultline-fill-"),
        "{record:?}"
    );
    fault::inject(&p, &f, &t, Some(&undo)).await.unwrap();
    let name = record.file.rsplit('/').next().unwrap();
    let written = std::fs::metadata(fill.path().join(name)).unwrap().len();
    assert_eq!(written, 3 << 20);
    fault::revert(&p, &undo).await.unwrap();
    assert!(!fill.path().join(name).exists(), "removed at revert");

    let seen = server.seen();
    // Every exec goes to the target container (the pod's first), never a helper.
    let execs = execs(&seen);
    assert_eq!(execs.len(), 3, "{execs:?}");
    assert!(execs.iter().all(|(c, _)| c == "api"), "{execs:?}");
    assert!(execs[0].1.contains("df -P -k '/fill'"), "{execs:?}");
    assert!(
        execs[1].1.contains("head -c 3145728 /dev/zero"),
        "{execs:?}"
    );
    assert!(execs[2].1.contains("rm -f"), "{execs:?}");
    assert_granted(&seen, &fault::rbac_rules(&f));
    assert_exec_only(&f);
}

/// A `sleep SECONDS` process of this test, standing for a process in "the container";
/// `seconds` makes its command line its own.
fn sleeping(seconds: &str) -> std::process::Child {
    std::process::Command::new("sleep")
        .arg(seconds)
        .spawn()
        .unwrap()
}

/// Asserts that `process` still runs (`why`: what that shows), and ends it either way.
#[track_caller]
fn assert_ran_on_then_end(mut process: std::process::Child, why: &str) {
    let exited = process.try_wait().unwrap();
    let _ = process.kill();
    let _ = process.wait();
    assert_eq!(exited, None, "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_process_on_a_pod_signals_only_the_matching_process_through_exec() {
    let (_fill, server, p) = exec_pod().await;
    let t = target("api-1", "uid-1");
    // Two processes in "the container"; only one matches.
    let mut victim = sleeping("31.41592");
    let bystander = sleeping("27.18281");
    let f = fault(json!({"kill": {"process": "^sleep 31\\.41592$", "signal": "SIGTERM"}}));
    let effects = fault::inject_reporting(&p, &f, &t, None)
        .await
        .unwrap()
        .expect("effects");
    assert_eq!(
        effects.signalled,
        vec![faultline::report::ProcessRef {
            pid: i64::from(victim.id()),
            command: "sleep 31.41592".into()
        }]
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(victim.wait().unwrap().signal(), Some(15));
    assert_ran_on_then_end(bystander, "the other process runs on");
    let seen = server.seen();
    assert!(execs(&seen).iter().all(|(c, _)| c == "api"));
    assert_granted(&seen, &fault::rbac_rules(&f));

    // Nothing matching: refused, naming what there is.
    let f = fault(json!({"kill": {"process": "^no-such-process-here$"}}));
    let err = fault::inject_reporting(&p, &f, &t, None).await.unwrap_err();
    assert!(err.to_string().contains("no-such-process-here"), "{err}");
}

/// A local process's state letter and start time (`/proc/PID/stat` fields 3 and 22).
fn proc_stat(pid: u32) -> (char, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    (
        fields[0].chars().next().unwrap(),
        fields[19].parse().unwrap(),
    )
}

/// Waits (2 s at most) until `pid`'s state is `want` (`T` stopped) or not (`!want`).
#[track_caller]
fn await_state(pid: u32, stopped: bool) {
    let end = std::time::Instant::now() + Duration::from_secs(2);
    while (proc_stat(pid).0 == 'T') != stopped && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(proc_stat(pid).0 == 'T', stopped, "state of {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_pause_on_a_pod_stops_and_continues_only_the_matching_process_through_exec() {
    use faultline::fault::process_pause::Via;
    let f = fault(json!({"process_pause": {"process": "^sleep 31\\.41593$", "duration": "10s"}}));
    // The process to stop, and one beside it in "the container" that runs on.
    let mut victim = sleeping("31.41593");
    let mut bystander = sleeping("27.18282");
    let (_fill, server, p) = exec_pod().await;
    let t = target("api-1", "uid-1");
    assert_eq!(fault::preflight(&f, &p).await, Ok(()));
    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let fault::UndoRecord::ResumeProcesses { paused, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    // The record names the process by PID and start time, before anything is signalled.
    assert_eq!(paused.via, Via::Exec);
    assert_eq!(paused.processes.len(), 1, "{paused:?}");
    assert_eq!(paused.processes[0].pid, i64::from(victim.id()));
    assert_eq!(paused.processes[0].start_time, proc_stat(victim.id()).1);
    assert_ne!(proc_stat(victim.id()).0, 'T');

    let stopped = fault::inject_reporting(&p, &f, &t, Some(&undo))
        .await
        .unwrap()
        .expect("effects")
        .signalled;
    let stopped: Vec<(i64, &str)> = stopped
        .iter()
        .map(|p| (p.pid, p.command.as_str()))
        .collect();
    assert_eq!(stopped, [(i64::from(victim.id()), "sleep 31.41593")]);
    await_state(victim.id(), true);
    assert_ne!(
        proc_stat(bystander.id()).0,
        'T',
        "the other process runs on"
    );
    fault::revert(&p, &undo).await.unwrap();
    await_state(victim.id(), false);

    let seen = server.seen();
    let execs = execs(&seen);
    // Every exec goes to the target container: the listing, the start times, the stop,
    // its confirmation, the continue and its confirmation.
    assert!(execs.iter().all(|(c, _)| c == "api"), "{execs:?}");
    let commands: Vec<&str> = execs.iter().map(|(_, c)| c.as_str()).collect();
    assert!(commands[0].contains("for d in /proc/"), "{commands:?}");
    assert!(commands[1].contains("cat /proc/$p/stat"), "{commands:?}");
    assert!(commands[2].contains("kill -STOP"), "{commands:?}");
    assert!(
        commands.iter().any(|c| c.contains("kill -CONT")),
        "{commands:?}"
    );
    assert_granted(&seen, &fault::rbac_rules(&f));
    assert_exec_only(&f);

    // A record whose start time is not the process's (its PID reused) continues nothing;
    // the process counts as ended, which the revert reports rather than fails on.
    let stop = |pid: u32, sig| {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
    };
    stop(victim.id(), nix::sys::signal::Signal::SIGSTOP);
    await_state(victim.id(), true);
    let mut recycled = undo.clone();
    let fault::UndoRecord::ResumeProcesses { paused, .. } = &mut recycled.record else {
        unreachable!()
    };
    paused.processes[0].start_time += 1;
    let said = fault::revert_reporting(&p, &recycled)
        .await
        .unwrap()
        .expect("what became of it");
    assert!(
        said.caveat
            .as_deref()
            .unwrap_or("")
            .contains("ended while paused"),
        "{said:?}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        proc_stat(victim.id()).0,
        'T',
        "a reused PID is not continued"
    );

    // A process someone else stopped is not taken over: refused before anything is
    // journaled.
    let err = fault::prepare(&p, &f, &t).await.unwrap_err();
    assert!(
        err.to_string().contains("already stopped") && err.to_string().contains("31.41593"),
        "{err}"
    );
    stop(victim.id(), nix::sys::signal::Signal::SIGCONT);

    // Nothing matching: refused, naming what there is.
    let f =
        fault(json!({"process_pause": {"process": "^no-such-process-here$", "duration": "10s"}}));
    let err = fault::prepare(&p, &f, &t).await.unwrap_err();
    assert!(
        err.to_string().contains("no-such-process-here")
            && err.to_string().contains("its processes: "),
        "{err}"
    );
    for child in [&mut victim, &mut bystander] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// memory_stress and io_stress run in the pod's target container itself, started in the
/// background by an exec and stopped by another: what they do is charged to that
/// container's cgroups (an ephemeral container would be charged to its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stress_on_a_pod_runs_in_the_target_container_and_stops_at_revert() {
    let (_fill, server, p) = exec_pod().await;
    let t = target("api-1", "uid-1");
    let f = fault(json!({"memory_stress": {"size": "8MiB", "ramp": "1s", "duration": "20s"}}));
    assert_eq!(fault::preflight(&f, &p).await, Ok(()));
    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let fault::UndoRecord::FreeMemory { memory, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    fault::inject(&p, &f, &t, Some(&undo)).await.unwrap();
    let marker = memory.marker.clone();
    let running = || !faultline::platform::host::pids_with_marker(&marker).is_empty();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !running() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        running(),
        "the allocator runs in the container after the exec ended"
    );
    fault::revert(&p, &undo).await.unwrap();
    assert!(!running(), "stopped at revert");
    let seen = server.seen();
    let execs = execs(&seen);
    assert!(execs.iter().all(|(c, _)| c == "api"), "{execs:?}");
    assert!(
        execs.iter().any(|(_, cmd)| cmd.ends_with("& echo started")),
        "{execs:?}"
    );
    // No ephemeral container: nothing is patched.
    assert!(!seen.iter().any(|s| s.method == "PATCH"));
    assert_granted(&seen, &fault::rbac_rules(&f));
    assert_exec_only(&f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_stress_on_a_pod_writes_in_the_target_container_and_removes_its_files() {
    let (fill, server, p) = exec_pod().await;
    let t = target("api-1", "uid-1");
    let f = fault(
        json!({"io_stress": {"workers": 2, "size": "2MiB", "path": "/fill", "duration": "20s"}}),
    );
    assert_eq!(fault::preflight(&f, &p).await, Ok(()));
    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let fault::UndoRecord::RemoveIoFiles { io, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    assert_eq!(io.files.len(), 2);
    fault::inject(&p, &f, &t, Some(&undo)).await.unwrap();
    let present = || {
        io.files
            .iter()
            .filter(|f| fill.path().join(f).exists())
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while present() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        present(),
        2,
        "each worker writes its file in the container's /fill"
    );
    fault::revert(&p, &undo).await.unwrap();
    assert_eq!(present(), 0, "removed at revert");
    assert!(faultline::platform::host::pids_with_marker(&io.marker).is_empty());
    let seen = server.seen();
    assert!(execs(&seen).iter().all(|(c, _)| c == "api"));
    assert!(!seen.iter().any(|s| s.method == "PATCH"));
    assert_granted(&seen, &fault::rbac_rules(&f));
    assert_exec_only(&f);
}

/// A command fault `where: target` on Kubernetes: `run` and the rollback go through the
/// exec websocket into the target container (`container`, else the pod's first), each
/// request granted by the Role `faultline rbac` generates, and their exit status and output
/// come back for the report; a non-zero exit is a refusal naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_fault_inside_a_pod_runs_over_the_exec_websocket() {
    let handler: fake::Handler = Arc::new(|s: &Seen| {
        if s.method == "GET" && s.path == format!("{PODS}/api-1") {
            return fake::Answer::Json(200, pod("api-1", "uid-1"));
        }
        if s.method == "GET" && s.path == format!("{PODS}/api-1/exec") {
            let argv = s.argv();
            return match argv.first().map(String::as_str) {
                Some("touch") => fake::Answer::exec_ok("flag set\n"),
                Some("rm") => fake::Answer::exec_ok(""),
                _ => fake::Answer::exec_exit(3, "no such flag\n"),
            };
        }
        no_route(s)
    });
    let server = fake::start(handler).await;
    let envoy = KubernetesTarget {
        container: Some("envoy".into()),
        ..spec()
    };
    let p = on_fake(&server, envoy, None);
    let t = target("api-1", "uid-1");
    let f = fault(
        json!({"command": {"where": "target", "run": ["touch", "/tmp/flag"],
        "rollback": ["rm", "/tmp/flag"], "duration": "5s"}}),
    );
    assert!(fault::preflight(&f, &p).await.is_ok());

    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let fx = fault::inject_reporting(&p, &f, &t, Some(&undo))
        .await
        .unwrap()
        .unwrap();
    let run = fx.run.unwrap();
    assert_eq!((run.exit_code, run.output.as_str()), (Some(0), "flag set"));
    fault::revert(&p, &undo).await.unwrap();

    let failing = fault(json!({"command": {"where": "target", "run": ["false"]}}));
    let err = fault::inject(&p, &failing, &t, None).await.unwrap_err();
    assert!(
        matches!(&err, PlatformError::Refused(m) if m.contains("`run` exited 3") && m.contains("no such flag")),
        "{err:?}"
    );

    let seen = server.seen();
    assert_eq!(
        execs(&seen),
        [
            ("envoy".to_string(), "touch /tmp/flag".to_string()),
            ("envoy".to_string(), "rm /tmp/flag".to_string()),
            ("envoy".to_string(), "false".to_string()),
        ]
    );
    assert_granted(&seen, &fault::rbac_rules(&f));
}

// ---------------------------------------------------------------------------------------
// Scoped network faults on Kubernetes: peer pods are resolved to their pod IPs through
// the API (a label selector), and the delayer's rules in the pod's namespace name exactly
// those addresses, in both chains for `direction: both`.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_delay_resolves_peer_pods_through_the_api_and_adds_exactly_their_rules() {
    let state = Arc::new(Mutex::new(NfqState::default()));
    let (p, server) = with_db_pods(&state).await;
    let t = target("api-1", "uid-1");
    let f = fault(json!({"network": {
        "delay": "100ms", "duration": "10s", "engine": "nfqueue", "direction": "both",
        "to": {"pods": {"selector": "app=db", "namespace": "data"}, "ports": [5432], "protocol": "tcp"}
    }}));
    scoped_delay_body(&state, &p, &server, &t, &f).await;
}

/// The nfqueue model, plus pods `app=db` in namespace `data`: db-0 at 10.244.1.5, db-1
/// still pending (no address).
async fn with_db_pods(state: &Arc<Mutex<NfqState>>) -> (KubernetesPlatform, fake::Server) {
    let inner = nfq_handler(state.clone());
    let handler: fake::Handler = Arc::new(move |s: &Seen| {
        if s.method == "GET" && s.path == "/api/v1/namespaces/data/pods" {
            assert!(
                s.pairs()
                    .contains(&("labelSelector".into(), "app=db".into())),
                "{}",
                s.line()
            );
            let mut ready = pod("db-0", "uid-db0");
            ready["metadata"]["namespace"] = json!("data");
            ready["status"]["podIP"] = json!("10.244.1.5");
            ready["status"]["podIPs"] = json!([{"ip": "10.244.1.5"}]);
            // A pending pod has no address yet: nothing to scope to.
            let mut pending = pod("db-1", "uid-db1");
            pending["metadata"]["namespace"] = json!("data");
            pending["status"] = json!({"phase": "Pending"});
            return fake::Answer::Json(
                200,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"},
                    "items": [ready, pending]}),
            );
        }
        inner(s)
    });
    let server = fake::start(handler).await;
    let p = on_fake(&server, spec(), Some("registry.local/faultline-helper:1"));
    (p, server)
}

async fn scoped_delay_body(
    state: &Arc<Mutex<NfqState>>,
    p: &KubernetesPlatform,
    server: &fake::Server,
    t: &Target,
    f: &Fault,
) {
    assert_eq!(fault::preflight(f, p).await, Ok(()));
    let undo = fault::prepare(p, f, t).await.unwrap().unwrap();
    let fault::UndoRecord::RemoveQdisc { qdisc, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    assert_eq!(
        qdisc.peers,
        vec![faultline::platform::Peer {
            name: "data/db-0".into(),
            addresses: vec!["10.244.1.5".parse().unwrap()],
        }]
    );
    let d = qdisc.delayer.clone().unwrap();
    fault::inject(p, f, t, Some(&undo)).await.unwrap();
    let tail = format!(
        "-m comment --comment {} -j NFQUEUE --queue-num {} --queue-bypass",
        d.marker, d.queue
    );
    let want = [
        format!("-A OUTPUT -o eth0 -d 10.244.1.5/32 -p tcp -m multiport --dports 5432 {tail}"),
        format!("-A INPUT -i eth0 -s 10.244.1.5/32 -p tcp -m multiport --sports 5432 {tail}"),
    ];
    {
        let st = state.lock().unwrap();
        let mut rules = st.rules.clone();
        rules.sort();
        let mut w = want.to_vec();
        w.sort();
        assert_eq!(rules, w);
    }
    // The helper takes the rules of both chains with it if faultline dies.
    let seen = server.seen();
    let helper = patches(&seen)[0]["spec"]["ephemeralContainers"][0].clone();
    let helper_name = helper["name"].as_str().unwrap().to_string();
    let script = kubelet_command(&helper)[2].clone();
    assert!(
        script.contains("iptables -w -S OUTPUT 2>/dev/null")
            && script.contains("iptables -w -S INPUT 2>/dev/null"),
        "{script}"
    );
    let on = |c: &str| (helper_name.clone(), c.to_string());
    let adds = execs_where(&seen, |c| c.starts_with("iptables -w -I "));
    assert_eq!(
        adds,
        vec![
            on(&format!("iptables -w -I {}", &want[0][3..])),
            on(&format!("iptables -w -I {}", &want[1][3..])),
        ]
    );
    fault::revert(p, &undo).await.unwrap();
    assert!(state.lock().unwrap().rules.is_empty());
    let seen = server.seen();
    assert_granted(&seen, &fault::rbac_rules(f));
    assert!(fault::rbac_rules(f).contains(&rbac::LIST_PODS));
    // Without `pods` in the scope, listing pods is not asked for.
    let plain = fault(json!({"network": {"delay": "100ms", "duration": "10s"}}));
    assert!(!fault::rbac_rules(&plain).contains(&rbac::LIST_PODS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_from_peer_pods_is_drop_rules_added_and_removed_through_the_helper() {
    let state = Arc::new(Mutex::new(NfqState::default()));
    let (p, server) = with_db_pods(&state).await;
    let t = target("api-1", "uid-1");
    let f = fault(json!({"network": {
        "duration": "10s",
        "partition": {"with": {"pods": {"selector": "app=db", "namespace": "data"}}}
    }}));
    assert_eq!(fault::preflight(&f, &p).await, Ok(()));
    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let fault::UndoRecord::RemoveQdisc { qdisc, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    assert!(qdisc.delayer.is_none() && !qdisc.tc, "no delayer, no qdisc");
    let marker = qdisc.drops.as_ref().unwrap().marker.clone();
    assert!(marker.starts_with("faultline-partition-"));
    fault::inject(&p, &f, &t, Some(&undo)).await.unwrap();
    let want = [
        format!("-A OUTPUT -o eth0 -d 10.244.1.5/32 -m comment --comment {marker} -j DROP"),
        format!("-A INPUT -i eth0 -s 10.244.1.5/32 -m comment --comment {marker} -j DROP"),
    ];
    {
        let st = state.lock().unwrap();
        let mut rules = st.rules.clone();
        rules.sort();
        let mut w = want.to_vec();
        w.sort();
        assert_eq!(rules, w);
        assert_eq!(st.qdisc, None);
    }
    let seen = server.seen();
    let patches = patches(&seen);
    assert_eq!(patches.len(), 1, "only the network helper: {patches:?}");
    let helper = patches[0]["spec"]["ephemeralContainers"][0].clone();
    let script = kubelet_command(&helper)[2].clone();
    assert!(
        script.contains("iptables -w -S OUTPUT 2>/dev/null")
            && script.contains("iptables -w -S INPUT 2>/dev/null")
            && !script.contains(&marker),
        "the helper takes both chains' rules with it, without naming the marker: {script}"
    );
    fault::revert(&p, &undo).await.unwrap();
    assert!(state.lock().unwrap().rules.is_empty());
    assert_granted(&server.seen(), &fault::rbac_rules(&f));
}

// ---------------------------------------------------------------------------------------
// The `http` fault on Kubernetes: the network helper (its exit script runs for real) and
// the proxy's ephemeral container; the pod's nat table is modelled as `iptables -t nat -S`
// prints it. The proxy is a stand-in as PID 1 of its container: its command line carries
// the real arguments (the marker too), it writes its counters file where `--counters`
// says, from the requests the test says it served, and it ends on SIGTERM.

/// The stand-in for `faultline http-proxy`: copies the test's `/tmp/served.json` (what it
/// served) to its counters file every 50 ms, whole (through a rename), as the real proxy
/// writes its counters.
const PROXY_STANDIN: &str = "c=; while [ $# -gt 0 ]; do [ \"$1\" = --counters ] && c=$2; shift; done; \
trap 'exit 0' TERM; while :; do \
{ cat /tmp/served.json 2>/dev/null || echo '{\"matched\":0,\"aborted\":0,\"delayed\":0,\"replaced\":0,\"passed\":0,\"not_http\":0}'; } > \"$c.tmp\" && mv \"$c.tmp\" \"$c\"; \
sleep 0.05 & wait $!; done";

#[derive(Default)]
struct HttpState {
    /// Ephemeral containers in the order they were added: name, spec, local process.
    containers: Vec<(String, Value, Container)>,
    /// The nat table's rules, as `iptables -t nat -S` prints them.
    nat: Vec<String>,
}

impl HttpState {
    fn proxy(&mut self) -> &mut Container {
        self.containers
            .iter_mut()
            .find(|(n, _, _)| n.starts_with("faultline-http-"))
            .map(|(_, _, c)| c)
            .unwrap()
    }
}

/// A rule as `iptables -S` prints it back: the destination first, `-m tcp` with `--dport`;
/// a rule given several destinations is one rule per destination.
fn nat_listed(spec: &str) -> Vec<String> {
    let mut words: Vec<&str> = spec.split_whitespace().collect();
    let mut dest = Vec::new();
    if let Some(i) = words.iter().position(|w| *w == "-d") {
        let from = if i > 0 && words[i - 1] == "!" {
            i - 1
        } else {
            i
        };
        dest = words.drain(from..=i + 1).collect();
    }
    let chain = words.remove(0);
    let rest = words
        .join(" ")
        .replace("-p tcp --dport", "-p tcp -m tcp --dport");
    match dest.split_last() {
        None => vec![format!("-A {chain} {rest}")],
        Some((nets, not)) => nets
            .split(',')
            .map(|n| {
                let mut d: Vec<&str> = not.to_vec();
                d.push(n);
                format!("-A {chain} {} {rest}", d.join(" "))
            })
            .collect(),
    }
}

/// One exec in the network helper: `iptables -t nat` against the modelled table,
/// anything else in the container for real.
fn http_helper_exec(st: &mut HttpState, helper: &str, argv: &[String]) -> fake::Answer {
    let line = argv.join(" ");
    if line == "iptables -w -t nat -S" {
        let mut out = String::new();
        for chain in ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"] {
            out.push_str(&format!("-P {chain} ACCEPT\n"));
        }
        for r in &st.nat {
            out.push_str(&format!("{r}\n"));
        }
        return fake::Answer::exec_ok(&out);
    }
    if let Some(spec) = line.strip_prefix("iptables -w -t nat -I ") {
        for (i, r) in nat_listed(spec).into_iter().enumerate() {
            st.nat.insert(i, r);
        }
        return fake::Answer::exec_ok("");
    }
    if let Some(spec) = line.strip_prefix("iptables -w -t nat -D ") {
        return iptables_delete(&mut st.nat, spec);
    }
    fake::Answer::from_output(&st.container(helper).unwrap().exec(argv))
}

impl PodModel for HttpState {
    fn containers(&mut self) -> &mut Vec<(String, Value, Container)> {
        &mut self.containers
    }

    /// The helper ran its exit script as it ended: faultline's redirects went with it.
    fn settle(&mut self) {
        if self.helper_ended() {
            self.nat
                .retain(|r| !r.contains("--comment faultline-http-"));
        }
    }

    fn pod(&mut self) -> Value {
        ephemeral_pod(&mut self.containers, |_| None)
    }

    fn start(&self, spec: &Value, argv: &[String]) -> Container {
        if argv[0] == "faultline" {
            // The proxy: its image's `faultline`, modelled by the stand-in.
            start_standin(spec, argv, PROXY_STANDIN)
        } else {
            Container::start(spec)
        }
    }

    fn exec(&mut self, container: &str, argv: &[String]) -> fake::Answer {
        if container.starts_with("faultline-net-") {
            return http_helper_exec(self, container, argv);
        }
        // The proxy's container: `cat` and the kill script run there for real.
        let c = self.container(container).unwrap();
        if argv[0] == "cat" {
            return fake::Answer::from_output(&c.exec(argv));
        }
        exec_beside_pid1(c, argv)
    }
}

fn http_handler(state: Arc<Mutex<HttpState>>) -> fake::Handler {
    pod_handler(state)
}

async fn http_platform(
    state: &Arc<Mutex<HttpState>>,
    image: Option<&str>,
) -> (KubernetesPlatform, fake::Server) {
    let server = fake::start(http_handler(state.clone())).await;
    let p = on_fake(&server, spec(), image);
    (p, server)
}

const HELPER_IMAGE: &str = "registry.local/faultline-helper:1";

/// The proxy's record from a prepared `http` fault.
fn http_proxy_record(undo: &fault::Undo) -> fault::http::ProxyRecord {
    let fault::UndoRecord::RemoveHttpProxy { proxy, .. } = &undo.record else {
        panic!("{undo:?}")
    };
    proxy.clone()
}

/// Injects `f` on the mocked pod, models `served` as what the proxy served, reverts, and
/// checks everything the API server saw against the Role; returns the proxy's record,
/// the nat table while the fault was active, the requests seen, and the effects.
async fn http_fault_through_the_helper(
    f: &Fault,
    served: &str,
) -> (
    fault::http::ProxyRecord,
    Vec<String>,
    Vec<Seen>,
    usize,
    Option<fault::FaultEffects>,
    Arc<Mutex<HttpState>>,
) {
    let state = Arc::new(Mutex::new(HttpState::default()));
    let (p, server) = http_platform(&state, Some(HELPER_IMAGE)).await;
    let t = target("api-1", "uid-1");
    assert_eq!(fault::preflight(f, &p).await, Ok(()));
    let undo = fault::prepare(&p, f, &t).await.unwrap().unwrap();
    let proxy = http_proxy_record(&undo);
    fault::inject(&p, f, &t, Some(&undo)).await.unwrap();
    let active = state.lock().unwrap().nat.clone();
    // The requests the proxy served, as its counters will say.
    {
        let mut st = state.lock().unwrap();
        let dir = st.proxy().tmp.path().to_path_buf();
        std::fs::write(dir.join("served.json.new"), served).unwrap();
        std::fs::rename(dir.join("served.json.new"), dir.join("served.json")).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.seen().len();
    let effects = fault::revert_reporting(&p, &undo).await.unwrap();
    let seen = server.seen();
    assert_granted(&seen, &fault::rbac_rules(f));
    (proxy, active, seen, before, effects, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_inbound_runs_the_proxy_in_an_ephemeral_container_behind_a_redirect_added_through_exec()
 {
    // `$(HOME)` and `$$` in the replacement body must reach the proxy as written.
    let f = fault(
        json!({"http": {"port": 8080, "match": {"path": "/api/*", "percent": 30},
        "replace": {"status": 418, "body": "$(HOME) costs $$5"}, "duration": "10s"}}),
    );
    let served = r#"{"matched":12,"aborted":0,"delayed":0,"replaced":12,"passed":30,"not_http":2}"#;
    let (proxy, active, seen, before, effects, state) =
        http_fault_through_the_helper(&f, served).await;
    let m = proxy.marker.clone();
    assert!(m.starts_with("faultline-http-"), "{m}");
    assert_eq!(
        proxy.placement,
        faultline::platform::Placement::InTarget {
            net_admin: true,
            image: Some(HELPER_IMAGE.into())
        }
    );
    assert_eq!(
        proxy.counters,
        std::path::PathBuf::from(format!("/tmp/{m}.json"))
    );
    let port = proxy.proxy_port.to_string();

    // While active: one REDIRECT in PREROUTING, as iptables lists it.
    assert_eq!(
        active,
        vec![format!(
            "-A PREROUTING -p tcp -m tcp --dport 8080 -m comment --comment {m} -j REDIRECT --to-ports {port}"
        )]
    );

    // Two ephemeral containers: the network helper, then the proxy.
    let patches = patches(&seen);
    assert_eq!(patches.len(), 2, "{patches:?}");
    let helper = patches[0]["spec"]["ephemeralContainers"][0].clone();
    let helper_name = helper["name"].as_str().unwrap().to_string();
    assert!(helper_name.starts_with("faultline-net-"), "{helper_name}");
    assert_eq!(helper["image"], HELPER_IMAGE);
    // After the kubelet's expansion the helper's script deletes the redirect as it ends
    // (TERM, or its lifetime's end should faultline die): `$rule` reaches the shell.
    let script = kubelet_command(&helper)[2].clone();
    let (m1, m2) = m.split_at(m.len() / 2);
    let on_exit = format!(
        "m1={m1}; m2={m2}; iptables -w -t nat -S 2>/dev/null | grep -F -e \"--comment $m1$m2 \" | while read -r _ rule; do iptables -w -t nat -D $rule; done"
    );
    assert!(
        script.starts_with(&format!("trap '{on_exit}; exit 0' TERM INT; ")),
        "{script}"
    );
    assert!(
        script.ends_with(&format!("; {on_exit}; exit 0")),
        "{script}"
    );
    assert!(!script.contains(&m), "never taken for the proxy: {script}");

    let proxy_spec = patches[1]["spec"]["ephemeralContainers"][0].clone();
    let argv = kubelet_command(&proxy_spec);
    // The proxy's own deadline: the duration plus a margin, from when it starts.
    let until = argv[9].clone();
    let secs: u64 = until.strip_prefix('+').unwrap().parse().unwrap();
    assert!((10..=21).contains(&secs), "{until}");
    let rules = r#"{"method":null,"path":"/api/*","headers":{},"percent":0.3,"abort_status":null,"reset":false,"delay_ms":null,"replace_status":418,"replace_headers":{},"replace_body":"$(HOME) costs $$5"}"#;
    assert_eq!(
        argv,
        [
            "faultline",
            "http-proxy",
            "--listen",
            &port,
            "--upstream",
            "8080",
            "--rules",
            rules,
            "--until",
            &until,
            "--parent",
            "0",
            "--counters",
            &format!("/tmp/{m}.json"),
            "--marker",
            &m,
        ],
        "the command after the kubelet's expansion"
    );
    assert_ne!(
        proxy_spec["command"][7], rules,
        "escaped for the kubelet: {proxy_spec}"
    );
    let mut proxy_patch = patches[1].clone();
    proxy_patch["spec"]["ephemeralContainers"][0]
        .as_object_mut()
        .unwrap()
        .remove("command");
    assert_eq!(
        proxy_patch,
        json!({
            "metadata": {"uid": "uid-1"},
            "spec": {"ephemeralContainers": [{
                "name": m,
                "image": HELPER_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "stdin": false,
                "tty": false,
                "securityContext": {"runAsUser": 0, "runAsNonRoot": false, "capabilities": {"add": ["NET_ADMIN"]}}
            }]}
        })
    );

    // The execs: the proxy is waited for (its first counters), then the redirect added
    // in the helper.
    let all = execs(&seen);
    let add = format!(
        "iptables -w -t nat -I PREROUTING -p tcp --dport 8080 -m comment --comment {m} -j REDIRECT --to-ports {port}"
    );
    let cat = (m.clone(), format!("cat /tmp/{m}.json"));
    let injected = &all[..execs(&seen[..before]).len()];
    let (last, waits) = injected.split_last().unwrap();
    assert_eq!(*last, (helper_name.clone(), add.clone()));
    assert!(
        !waits.is_empty() && waits.iter().all(|e| *e == cat),
        "{waits:?}"
    );

    // Revert: the redirect is deleted as listed and confirmed gone, the counters are read
    // in the proxy's container, the proxy gets SIGTERM, the helper is stopped.
    let reverted = execs(&seen[before..]);
    let on = |c: &str| (helper_name.clone(), c.to_string());
    let listed = format!(
        "PREROUTING -p tcp -m tcp --dport 8080 -m comment --comment {m} -j REDIRECT --to-ports {port}"
    );
    assert_eq!(
        reverted[..4],
        [
            on("iptables -w -t nat -S"),
            on(&format!("iptables -w -t nat -D {listed}")),
            on("iptables -w -t nat -S"),
            on("iptables -w -t nat -S"),
        ]
    );
    assert_eq!(reverted[4], cat, "counters read before the proxy stops");
    assert_eq!(reverted[5].0, m, "{reverted:?}");
    assert!(
        reverted[5].1.contains("kill -TERM"),
        "SIGTERM first: {:?}",
        reverted[5]
    );
    assert_eq!(
        reverted[6..],
        [on(
            "sh -c read pid < /tmp/faultline-net.pid && kill -TERM \"$pid\""
        )]
    );
    {
        let mut st = state.lock().unwrap();
        assert!(st.nat.is_empty(), "{:?}", st.nat);
        assert_eq!(
            st.proxy().exited(),
            Some(0),
            "the proxy ended by its SIGTERM"
        );
        assert_eq!(st.container(&helper_name).unwrap().exited(), Some(0));
    }
    assert_eq!(
        faultline::platform::host::pids_with_marker(&m),
        Vec::<i32>::new()
    );

    // The counts reach the fault's effects, as the report prints them.
    let http = effects.and_then(|e| e.http).expect("the proxy's counts");
    assert_eq!(
        serde_json::to_value(http).unwrap(),
        serde_json::from_str::<Value>(served).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_outbound_redirects_the_pods_own_calls_and_lets_the_proxys_marked_ones_pass() {
    let f = fault(json!({"http": {"port": 9090, "direction": "outbound",
        "to": {"cidrs": ["10.0.0.0/8"]}, "abort": {"status": 503}, "duration": "10s"}}));
    let served = r#"{"matched":4,"aborted":4,"delayed":0,"replaced":0,"passed":0,"not_http":0}"#;
    let (proxy, active, seen, before, effects, state) =
        http_fault_through_the_helper(&f, served).await;
    let m = &proxy.marker;
    let port = proxy.proxy_port;
    assert_eq!(
        active,
        vec![format!(
            "-A OUTPUT -d 10.0.0.0/8 -p tcp -m tcp --dport 9090 -m mark ! --mark 0xfa17417 -m comment --comment {m} -j REDIRECT --to-ports {port}"
        )]
    );
    let helper_name = patches(&seen)[0]["spec"]["ephemeralContainers"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let add = format!(
        "iptables -w -t nat -I OUTPUT -p tcp --dport 9090 -d 10.0.0.0/8 -m mark ! --mark 0xfa17417 -m comment --comment {m} -j REDIRECT --to-ports {port}"
    );
    assert!(
        execs(&seen[..before]).contains(&(helper_name.clone(), add)),
        "{:?}",
        execs(&seen[..before])
    );
    let argv = kubelet_command(&patches(&seen)[1]["spec"]["ephemeralContainers"][0]);
    assert_eq!(
        &argv[..6],
        [
            "faultline",
            "http-proxy",
            "--listen",
            &port.to_string(),
            "--upstream",
            "9090"
        ]
    );
    assert_eq!(
        patches(&seen)[1]["spec"]["ephemeralContainers"][0]["securityContext"]["capabilities"],
        json!({"add": ["NET_ADMIN"]}),
        "the proxy marks its upstream connections (SO_MARK)"
    );
    assert!(
        execs(&seen[before..]).contains(&(
            helper_name,
            format!("iptables -w -t nat -D OUTPUT -d 10.0.0.0/8 -p tcp -m tcp --dport 9090 -m mark ! --mark 0xfa17417 -m comment --comment {m} -j REDIRECT --to-ports {port}")
        ))
    );
    assert!(state.lock().unwrap().nat.is_empty());
    let http = effects.and_then(|e| e.http).unwrap();
    assert_eq!((http.matched, http.aborted, http.passed), (4, 4, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_on_kubernetes_needs_a_helper_image_and_asks_for_nothing_without_one() {
    let state = Arc::new(Mutex::new(HttpState::default()));
    let (p, server) = http_platform(&state, None).await;
    let f = fault(json!({"http": {"port": 8080, "abort": {"status": 503}, "duration": "10s"}}));
    let err = fault::preflight(&f, &p).await.unwrap_err();
    assert_eq!(
        err,
        "the `http` fault on kubernetes runs its proxy in an ephemeral container from faultline's helper image: name an image with `faultline`, `sh` and `iptables` (the `helper` target of deploy/Dockerfile) with --tc-image or FAULTLINE_TC_IMAGE"
    );
    assert!(server.seen().is_empty(), "refused before any request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_a_dead_proxy_is_reverted_and_the_helper_bounds_the_redirects_life() {
    let state = Arc::new(Mutex::new(HttpState::default()));
    let (p, server) = http_platform(&state, Some(HELPER_IMAGE)).await;
    let t = target("api-1", "uid-1");
    let f = fault(json!({"http": {"port": 8080, "delay": "1s", "duration": "10s"}}));
    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let proxy = http_proxy_record(&undo);
    fault::inject(&p, &f, &t, Some(&undo)).await.unwrap();
    // Should faultline die, the helper's script removes the redirect at its lifetime's
    // end: the fault's duration plus twice the revert timeout.
    let helper = patches(&server.seen())[0]["spec"]["ephemeralContainers"][0].clone();
    let script = kubelet_command(&helper)[2].clone();
    assert!(
        script.contains("; sleep 70 & wait $!; m1="),
        "lifetime 10s + 2 x 30s: {script}"
    );
    // The proxy dies (OOM-killed, evicted): its counters go with its container.
    {
        let mut st = state.lock().unwrap();
        let c = st.proxy();
        let group = nix::unistd::Pid::from_raw(c.child.id() as i32);
        nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).unwrap();
        let start = std::time::Instant::now();
        while c.exited().is_none() {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(st.nat.len(), 1);
    }
    let before = server.seen().len();
    let effects = fault::revert_reporting(&p, &undo).await.unwrap();
    assert_eq!(effects, None, "no counts from a proxy that is gone");
    let seen = server.seen();
    // Only the counters' read is tried there (the API server refuses an exec into a
    // terminated container); no kill is sent.
    let in_proxy: Vec<_> = execs(&seen[before..])
        .into_iter()
        .filter(|(c, _)| *c == proxy.marker)
        .collect();
    assert_eq!(
        in_proxy,
        [(
            proxy.marker.clone(),
            format!("cat /tmp/{}.json", proxy.marker)
        )]
    );
    {
        let mut st = state.lock().unwrap();
        assert!(st.nat.is_empty(), "{:?}", st.nat);
        let helper = helper["name"].as_str().unwrap().to_string();
        assert!(st.container(&helper).unwrap().exited().is_some());
    }
    assert_granted(&seen, &fault::rbac_rules(&f));
}

/// validate takes the `http` fault on Kubernetes, `plan` says where its proxy runs, and
/// `faultline rbac` grants the ephemeral containers and exec it needs.
#[test]
fn http_on_kubernetes_validates_plans_and_has_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k8s-http.yaml");
    std::fs::write(
        &file,
        "version: 1\nname: k8s-http\ntarget:\n  kubernetes: {namespace: shop, selector: app=api}\nfaults:\n  - http: {port: 8080, match: {path: /api/*, percent: 30}, abort: {status: 503}, duration: 30s}\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let run = |args: &[&str]| {
        let out = assert_cmd::Command::cargo_bin("faultline")
            .unwrap()
            .current_dir(root())
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, said) = run(&["validate", &file]);
    assert_eq!(code, Some(0), "{said}");
    let (_, plan) = run(&["plan", &file]);
    assert!(
        plan.contains("fault 1: answer 503 to 30% of requests to port 8080 on paths /api/*, for 30s (faultline's HTTP/1.1 proxy in an ephemeral container of the pod, behind an iptables REDIRECT added and removed through exec; the helper image needs `faultline`, `sh` and `iptables` (the `helper` target of deploy/Dockerfile); other requests pass untouched, HTTPS is not inspected)"),
        "{plan}"
    );
    let (kinds, rules) = rbac_rules(&[&file]);
    assert_eq!(
        rules,
        [
            "shop  pods: get,list",
            "shop  pods/ephemeralcontainers: patch",
            "shop  pods/exec: create,get",
        ]
    );
    assert_eq!(kinds, ["Role", "RoleBinding"]);
}

/// `faultline run` from a kubeconfig: the pod is found, the fault goes through the helper
/// and the proxy's containers, and the proxy's counts are in the JSON report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_run_puts_the_proxys_counts_in_the_report() {
    let state = Arc::new(Mutex::new(HttpState::default()));
    let inner = http_handler(state.clone());
    let handler: fake::Handler = Arc::new({
        let state = state.clone();
        move |s: &Seen| {
            if s.method == "GET" && s.path == PODS {
                let pod = state.lock().unwrap().pod();
                return fake::Answer::Json(200, pod_list(vec![pod]));
            }
            inner(s)
        }
    });
    let server = fake::start(handler).await;
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &server.url);
    let file = dir.path().join("http.yaml");
    std::fs::write(
        &file,
        "version: 1\nname: http-503\ntarget:\n  kubernetes: {namespace: shop, selector: app=api}\nfaults:\n  - http: {port: 8080, match: {path: /api/*}, abort: {status: 503}, duration: 2s}\n",
    )
    .unwrap();
    let report = dir.path().join("r.json");
    let served = r#"{"matched":9,"aborted":9,"delayed":0,"replaced":0,"passed":21,"not_http":0}"#;
    // The proxy serves requests while the fault is active.
    let serving = tokio::spawn({
        let state = state.clone();
        async move {
            for _ in 0..500 {
                {
                    let mut st = state.lock().unwrap();
                    let proxy = st
                        .containers
                        .iter()
                        .find(|(n, _, _)| n.starts_with("faultline-http-"))
                        .map(|(_, _, c)| c.tmp.path().to_path_buf());
                    if let Some(tmp) = proxy {
                        std::fs::write(tmp.join("served.json.new"), served).unwrap();
                        std::fs::rename(tmp.join("served.json.new"), tmp.join("served.json"))
                            .unwrap();
                        return true;
                    }
                    st.settle();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            false
        }
    });
    let out = faultline(
        vec![
            "run".into(),
            file.display().to_string(),
            "--tc-image".into(),
            HELPER_IMAGE.into(),
            "--report".into(),
            format!("json:{}", report.display()),
        ],
        vec![
            ("KUBECONFIG", config),
            ("FAULTLINE_STATE_DIR", dir.path().join("state")),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(serving.await.unwrap(), "the proxy's container was added");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let f = &r["faults"][0];
    assert_eq!(f["status"], "reverted", "{f}");
    assert_eq!(
        f["effects"]["http"],
        serde_json::from_str::<Value>(served).unwrap(),
        "{f}"
    );
    {
        let mut st = state.lock().unwrap();
        assert!(st.nat.is_empty(), "{:?}", st.nat);
        assert_eq!(st.proxy().exited(), Some(0));
    }
    let http = fault(json!({"http": {"port": 8080, "abort": {"status": 503}, "duration": "2s"}}));
    let mut allowed = rbac::for_targets();
    allowed.extend(fault::rbac_rules(&http));
    assert_granted(&server.seen(), &allowed);
}

/// `to: {pods: ...}` on Kubernetes: the servers are the selected pods' IPs, listed through
/// the API when the fault is prepared; iptables keeps one rule per address, and revert
/// deletes each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_outbound_to_pods_redirects_only_calls_to_their_addresses() {
    let state = Arc::new(Mutex::new(HttpState::default()));
    let inner = http_handler(state.clone());
    let handler: fake::Handler = Arc::new(move |s: &Seen| {
        if s.method == "GET" && s.path == PODS {
            assert_eq!(
                s.pairs(),
                [("labelSelector".to_string(), "app=payments".to_string())]
            );
            let mut a = pod("payments-1", "uid-p1");
            a["status"]["podIP"] = json!("10.244.1.5");
            let mut b = pod("payments-2", "uid-p2");
            b["status"]["podIP"] = json!("10.244.3.9");
            return fake::Answer::Json(200, pod_list(vec![a, b]));
        }
        inner(s)
    });
    let server = fake::start(handler).await;
    let p = on_fake(&server, spec(), Some(HELPER_IMAGE));
    let t = target("api-1", "uid-1");
    let f = fault(json!({"http": {"port": 8443, "direction": "outbound",
        "to": {"pods": {"selector": "app=payments"}}, "delay": "2s", "duration": "10s"}}));
    assert_eq!(fault::preflight(&f, &p).await, Ok(()));
    let undo = fault::prepare(&p, &f, &t).await.unwrap().unwrap();
    let proxy = http_proxy_record(&undo);
    fault::inject(&p, &f, &t, Some(&undo)).await.unwrap();
    let (m, port) = (&proxy.marker, proxy.proxy_port);
    let rule = |ip: &str| {
        format!(
            "OUTPUT -d {ip}/32 -p tcp -m tcp --dport 8443 -m mark ! --mark 0xfa17417 -m comment --comment {m} -j REDIRECT --to-ports {port}"
        )
    };
    assert_eq!(
        state.lock().unwrap().nat,
        vec![
            format!("-A {}", rule("10.244.1.5")),
            format!("-A {}", rule("10.244.3.9"))
        ]
    );
    fault::revert_reporting(&p, &undo).await.unwrap();
    assert!(state.lock().unwrap().nat.is_empty());
    let seen = server.seen();
    let deletes: Vec<String> = execs(&seen)
        .into_iter()
        .filter(|(_, c)| c.starts_with("iptables -w -t nat -D "))
        .map(|(_, c)| c)
        .collect();
    assert_eq!(
        deletes,
        [
            format!("iptables -w -t nat -D {}", rule("10.244.1.5")),
            format!("iptables -w -t nat -D {}", rule("10.244.3.9")),
        ]
    );
    assert_granted(&seen, &fault::rbac_rules(&f));
}
