//! Builds through the real Docker Engine of the test bed. No registry is reachable, so images
//! are `FROM scratch` or from the test bed's kind-node stand-in (it has busybox for `RUN`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use kind_parity_images::build::{BuildSpec, Built, Prepared, build};

fn engine(test: &str) -> Option<(bollard::Docker, String)> {
    // The stand-in image is made by the test bed's docker part: its variable says the engine is up.
    let base = kind_parity_testkit::require(kind_parity_testkit::NODE_IMAGE, test)?;
    Some((bollard::Docker::connect_with_local_defaults().expect("engine"), base))
}

fn spec(dir: &Path, service: &str) -> BuildSpec {
    BuildSpec {
        service: service.into(),
        context: dir.into(),
        dockerfile: "Dockerfile".into(),
        args: BTreeMap::new(),
        target: None,
    }
}

fn prepared(dir: &Path, service: &str) -> Prepared {
    spec(dir, service).prepare().expect("context read")
}

fn unique(name: &str) -> String {
    format!("kp-test-{name}-{}", std::process::id())
}

async fn remove(docker: &bollard::Docker, tag: &str) {
    let _ = docker.remove_image(tag, None::<bollard::query_parameters::RemoveImageOptions>, None).await;
}

#[tokio::test]
async fn builds_once_per_content_and_honours_dockerignore() {
    let Some((docker, _)) = engine("builds_once_per_content_and_honours_dockerignore") else { return };
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY . /app/\n").unwrap();
    fs::write(dir.path().join("app.txt"), "v1").unwrap();
    fs::write(dir.path().join(".dockerignore"), "*.log\ncache\n").unwrap();
    fs::write(dir.path().join("debug.log"), "noise").unwrap();
    fs::create_dir(dir.path().join("cache")).unwrap();
    fs::write(dir.path().join("cache/blob"), "noise").unwrap();
    let service = unique("ctx");
    let lines = std::sync::Mutex::new(Vec::new());
    let progress = |l: &str| lines.lock().unwrap().push(l.to_owned());

    let first = build(&docker, &prepared(dir.path(), &service), &progress).await.expect("build");
    let tag = first.tag().to_owned();
    assert!(matches!(first, Built::Built { .. }), "{first:?}");
    assert!(tag.starts_with(&format!("{service}:kp-")) && tag.len() == service.len() + 4 + 12, "{tag}");
    assert!(lines.lock().unwrap().iter().any(|l| l.contains("COPY . /app/")), "progress heard the build");

    // Unchanged context: skipped. Ignored files changing: same tag.
    assert_eq!(
        build(&docker, &prepared(dir.path(), &service), &progress).await.unwrap(),
        Built::Unchanged { tag: tag.clone() }
    );
    fs::write(dir.path().join("debug.log"), "more noise").unwrap();
    fs::write(dir.path().join("cache/blob"), "more noise").unwrap();
    assert_eq!(spec(dir.path(), &service).tag().unwrap(), tag);

    // A real change: a new tag and a new build. A build arg is content too.
    fs::write(dir.path().join("app.txt"), "v2").unwrap();
    let second = build(&docker, &prepared(dir.path(), &service), &progress).await.unwrap();
    assert!(matches!(second, Built::Built { .. }) && second.tag() != tag, "{second:?}");
    let mut with_arg = spec(dir.path(), &service);
    with_arg.args.insert("VERSION".into(), "1".into());
    assert_ne!(with_arg.tag().unwrap(), second.tag());

    // What was sent: the ignored files are not in the context (the Dockerfile and .dockerignore always are).
    let sent: Vec<String> =
        kind_parity_images::context::collect(dir.path(), "Dockerfile").unwrap().into_iter().map(|e| e.path).collect();
    assert_eq!(sent, vec![".dockerignore", "Dockerfile", "app.txt"]);
    remove(&docker, &tag).await;
    remove(&docker, second.tag()).await;
}

#[tokio::test]
async fn a_failed_step_is_named_with_its_output() {
    let Some((docker, base)) = engine("a_failed_step_is_named_with_its_output") else { return };
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo preparing\nRUN echo about to fail && exit 3\n"),
    )
    .unwrap();
    let service = unique("fail");
    let err = build(&docker, &prepared(dir.path(), &service), &|_| {}).await.expect_err("the build fails");
    let text = err.to_string();
    // The engine counts the LABEL step it adds for the build's labels: "Step 3/4".
    assert!(text.starts_with(&format!("building {service} failed at `Step 3/")), "{text}");
    assert!(text.contains(" : RUN echo about to fail && exit 3`: "), "{text}");
    assert!(text.contains("returned a non-zero code: 3"), "{text}");
    assert!(text.contains("last output:") && text.contains("about to fail"), "{text}");
}

#[tokio::test]
async fn a_missing_dockerfile_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let err = spec(dir.path(), "x").tag().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no Dockerfile at {}/Dockerfile; set `build.dockerfile` to its path relative to the context",
            dir.path().display()
        )
    );
}

#[tokio::test]
async fn a_file_changed_after_hashing_stops_the_build_and_is_named() {
    let Some((docker, _)) = engine("a_file_changed_after_hashing_stops_the_build_and_is_named") else { return };
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY app.txt /app.txt\n").unwrap();
    fs::write(dir.path().join("app.txt"), "v1").unwrap();
    let service = unique("changed");
    let prepared = prepared(dir.path(), &service);
    // Same length, other bytes: the tag says v1, the file now holds v2.
    fs::write(dir.path().join("app.txt"), "v2").unwrap();
    let err = build(&docker, &prepared, &|_| {}).await.expect_err("the build stops");
    assert!(matches!(err, kind_parity_images::Error::ContextChanged { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{} changed while its build context was read", dir.path().join("app.txt").display())
    );
    let image = docker.inspect_image(prepared.tag()).await;
    assert!(image.is_err(), "no image carries the tag of content it does not hold");
}
