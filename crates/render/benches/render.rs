//! Load + render of the demo stack with every component on; target: median under 20 ms.
//!
//! Secrets are generated once before the loop, as `kind-parity render` does for an existing
//! environment; each iteration loads the layered config from disk, validates it and renders.

#![allow(clippy::print_stdout, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use kind_parity_render::{ImageRefs, LoadOptions, Override, Secrets, Templates, load, render};
use rand::SeedableRng;

const TARGET: Duration = Duration::from_millis(20);
const RUNS: usize = 200;

fn main() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    let all_on = kind_parity_testkit::ALL_COMPONENTS_ON;
    let options = LoadOptions {
        config: Some(demo.join("kind-parity.yaml")),
        dir: demo.clone(),
        env: vec![],
        overrides: all_on
            .iter()
            .map(|(p, v)| Override { flag: "--set".into(), path: (*p).into(), value: (*v).into() })
            .collect(),
    };
    let loaded = load(&options).expect("demo loads");
    let mut secrets = Secrets::default();
    secrets
        .ensure(&loaded.config, &mut rand::rngs::StdRng::seed_from_u64(7), time::OffsetDateTime::now_utc())
        .expect("secrets");
    let templates = Templates::embedded().expect("templates");

    let mut load_times = Vec::with_capacity(RUNS);
    let mut render_times = Vec::with_capacity(RUNS);
    let mut totals = Vec::with_capacity(RUNS);
    let mut bytes = 0;
    let mut manifests = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let loaded = load(&options).expect("demo loads");
        let loaded_at = Instant::now();
        let images = ImageRefs::from_config(&loaded.config);
        let plan = render(&loaded.config, &loaded.inputs, &secrets, &images, &templates).expect("render");
        let end = Instant::now();
        manifests = plan.manifests.len();
        bytes = plan.files().iter().map(|(_, c)| c.len()).sum::<usize>();
        load_times.push(loaded_at - start);
        render_times.push(end - loaded_at);
        totals.push(end - start);
    }
    // Templates are parsed once per process; measure that too, since `render` pays it once.
    let template_start = Instant::now();
    let _ = Templates::embedded().expect("templates");
    let template_parse = template_start.elapsed();

    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (load_m, render_m, total_m) = (median(&mut load_times), median(&mut render_times), median(&mut totals));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("bench render: demo stack, all components on, {RUNS} runs, {manifests} manifests, {bytes} bytes");
    println!("  load + validate   median {:>8.3} ms", ms(load_m));
    println!("  render            median {:>8.3} ms", ms(render_m));
    println!(
        "  load + render     median {:>8.3} ms   (+ {:.3} ms template parsing once per process)",
        ms(total_m),
        ms(template_parse)
    );
    println!(
        "  ratio to the 20 ms target: {:.3}x  {}",
        ms(total_m + template_parse) / ms(TARGET),
        if total_m + template_parse < TARGET { "ok" } else { "OVER TARGET" }
    );
}
