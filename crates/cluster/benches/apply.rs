//! Apply of the full rendered demo stack on the test bed's API server: ours vs
//! `kubectl apply --server-side -f DIR`, same run, fresh namespaces each run, median of several;
//! and a no-op re-apply. Targets: ≤ 0.5× kubectl; no-op ≤ 300 ms.

#![allow(clippy::print_stdout, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kind_parity_cluster::apply::{self, ApplyOptions, Inventory, Manifest};
use kind_parity_cluster::{Target, connect};
use kind_parity_render::{ImageRefs, LoadOptions, Override, Secrets, Templates};
use rand::SeedableRng;

const RUNS: usize = 5;

fn render(ns: &str, secrets: &mut Option<Secrets>) -> Vec<Manifest> {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    let overrides = [("namespace", ns), ("name", "kp-bench")]
        .iter()
        .map(|(p, v)| Override { flag: "--set".into(), path: (*p).into(), value: (*v).into() })
        .collect();
    let loaded = kind_parity_render::load(&LoadOptions {
        config: Some(demo.join("kind-parity.yaml")),
        dir: demo,
        env: vec![],
        overrides,
    })
    .expect("demo loads");
    let secrets = secrets.get_or_insert_with(|| {
        let mut s = Secrets::default();
        s.ensure(&loaded.config, &mut rand::rngs::StdRng::seed_from_u64(9), time::OffsetDateTime::now_utc()).unwrap();
        s
    });
    let images = ImageRefs::from_config(&loaded.config);
    kind_parity_render::render(&loaded.config, &loaded.inputs, secrets, &images, &Templates::embedded().unwrap())
        .unwrap()
        .manifests
        .into_iter()
        .map(|m| Manifest { file: m.file, order: m.phase.order(), content: m.content })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn kubectl(kubeconfig: &str, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new("kubectl").arg("--kubeconfig").arg(kubeconfig).args(args).output().expect("kubectl runs");
    let took = start.elapsed();
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    took
}

#[tokio::main]
async fn main() {
    let Ok(kubeconfig) = std::env::var("KIND_PARITY_TEST_KUBECONFIG") else {
        println!(
            "bench apply: SKIPPED: KIND_PARITY_TEST_KUBECONFIG is not set; start the test bed (cargo xtask testbed up)"
        );
        return;
    };
    if Command::new("kubectl").arg("version").arg("--client").output().is_err() {
        println!("bench apply: SKIPPED: kubectl is not installed (Debian: apt-get install kubernetes-client)");
        return;
    }
    let (client, _) =
        connect(&Target { kubeconfig: Some(kubeconfig.clone().into()), context: None }).await.expect("test bed");
    let mut secrets = None;
    let (mut ours, mut theirs, mut noop, mut theirs_noop) = (vec![], vec![], vec![], vec![]);
    let mut objects = 0;
    for run in 0..RUNS {
        let id = format!("{}-{run}", std::process::id());
        // Ours.
        let ns = format!("kp-bench-ours-{id}");
        let manifests = render(&ns, &mut secrets);
        let options = ApplyOptions { environment: "kp-bench".into(), force: true, prune: false };
        let start = Instant::now();
        let report = apply::apply(&client, &manifests, &Inventory::default(), &options).await.expect("apply");
        ours.push(start.elapsed());
        objects = report.applied.len();
        let start = Instant::now();
        apply::apply(&client, &manifests, &report.inventory, &options).await.expect("re-apply");
        noop.push(start.elapsed());

        // kubectl, same manifests in a fresh namespace, files in apply order.
        let ns = format!("kp-bench-kubectl-{id}");
        let dir = tempfile::tempdir().unwrap();
        for m in render(&ns, &mut secrets) {
            std::fs::write(dir.path().join(&m.file), &m.content).unwrap();
        }
        let path = dir.path().to_str().unwrap();
        let args = ["apply", "--server-side", "--force-conflicts", "--field-manager", "kubectl-bench", "-f", path];
        theirs.push(kubectl(&kubeconfig, &args));
        theirs_noop.push(kubectl(&kubeconfig, &args));
        for ns in [format!("kp-bench-ours-{id}"), format!("kp-bench-kubectl-{id}")] {
            kubectl(&kubeconfig, &["delete", "namespace", &ns, "--wait=false"]);
        }
    }
    // kubectl took ownership of fields of the objects all environments share (the ingress
    // controller); give them back, or the next apply without --force meets a conflict.
    let manifests = render("kp-bench-restore", &mut secrets);
    let options = ApplyOptions { environment: "kp-test".into(), force: true, prune: false };
    let restored = apply::apply(&client, &manifests, &Inventory::default(), &options).await.expect("restore ownership");
    // Forcing the same values makes both managers co-own them; a manager gives fields up by
    // applying an object without them: kubectl's manager applies bare skeletons.
    let skeletons: String = restored
        .inventory
        .objects
        .keys()
        .filter(|r| r.namespace.as_deref() != Some("kp-bench-restore") && r.name != "kp-bench-restore")
        .map(|r| {
            let ns = r.namespace.as_ref().map(|n| format!(", namespace: {n}")).unwrap_or_default();
            format!("apiVersion: {}\nkind: {}\nmetadata: {{name: {}{ns}}}\n---\n", r.api_version, r.kind, r.name)
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), skeletons).unwrap();
    let path = file.path().to_str().unwrap();
    kubectl(
        &kubeconfig,
        &["apply", "--server-side", "--validate=false", "--field-manager", "kubectl-bench", "-f", path],
    );
    let all = ApplyOptions { prune: true, ..options };
    apply::apply(&client, &[], &only_namespaced(restored.inventory, "kp-bench-restore"), &all).await.expect("cleanup");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (o, t, n, tn) = (median(ours), median(theirs), median(noop), median(theirs_noop));
    println!("bench apply: demo stack, {objects} objects, {RUNS} runs, test bed kube-apiserver on loopback");
    println!("  kind-parity apply (fresh namespace)  median {:>8.1} ms", ms(o));
    println!("  kubectl apply --server-side          median {:>8.1} ms", ms(t));
    println!(
        "  ratio ours/kubectl: {:.2}x  (target <= 0.5x)  {}",
        ms(o) / ms(t),
        if ms(o) <= 0.5 * ms(t) { "ok" } else { "OVER TARGET" }
    );
    println!(
        "  no-op re-apply: ours median {:>6.1} ms (target <= 300 ms) {}; kubectl {:.1} ms",
        ms(n),
        if ms(n) <= 300.0 { "ok" } else { "OVER TARGET" },
        ms(tn)
    );
}

/// The part of an inventory inside one namespace (and that namespace), for a cleanup that leaves
/// the shared objects in place.
fn only_namespaced(mut inventory: Inventory, namespace: &str) -> Inventory {
    inventory
        .objects
        .retain(|r, _| r.namespace.as_deref() == Some(namespace) || (r.kind == "Namespace" && r.name == namespace));
    inventory
}
