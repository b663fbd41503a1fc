//! The `stack` part: the demo stack's images, built here from upstream software and tagged with
//! the exact references kind-parity's manifests use, so the manifests run unchanged.
//!
//! No container registry can be reached from this machine, so each image is made from what can:
//! - Traefik, NATS: built from their Go modules, laid out as their official images;
//! - Keycloak: the Quarkus distribution from Maven Central on Debian's JRE, laid out as the
//!   official image (`/opt/keycloak`, uid 1000, `kc.sh` as the entrypoint);
//! - Postgres, Redis: **stand-ins**, Debian's packages behind entrypoints that honour the official
//!   images' documented contract; their labels say which version really runs;
//! - the demo services' Python base: a **stand-in**, Debian's Python 3.11, so `up` builds the
//!   demo's api and web through the Docker API for real.
//!
//! The references come from the render crate's defaults, so a pin bumped there is built at its
//! new version here (or fails naming the recipe to update). Each image is saved to
//! `cache/stack-images/` once and loaded from there into a fresh engine. Loading them into a
//! cluster's nodes is the project's own loader's job (see `kind.rs`).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use super::gobuild::{GoBuild, Wrap};
use super::{Testbed, apt_install, node, proc, say, write_file};

const RECIPE_LABEL: &str = "kind-parity-testbed.recipe";

/// The base image of the demo's Dockerfiles (`examples/demo/*/Dockerfile`).
pub const PYTHON_IMAGE: &str = "docker.io/library/python:3.13-alpine";

const POSTGRES_ENTRYPOINT: &str = include_str!("files/stack/postgres-entrypoint.sh");
const REDIS_ENTRYPOINT: &str = include_str!("files/stack/redis-entrypoint.sh");
const TRAEFIK_ENTRYPOINT: &str = include_str!("files/stack/traefik-entrypoint.sh");
const NATS_CONF: &str = include_str!("files/stack/nats-server.conf");

/// How an image is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recipe {
    Traefik,
    Nats,
    Keycloak,
    Postgres,
    Redis,
    Python,
}

impl Recipe {
    /// Bumped when the recipe changes, so images made by an older one are made anew.
    fn generation(self) -> &'static str {
        match self {
            // 2: PATH includes /usr/local/bin, where traefik is.
            Recipe::Traefik => "2",
            Recipe::Nats | Recipe::Keycloak | Recipe::Postgres | Recipe::Redis | Recipe::Python => "1",
        }
    }
}

/// The stack's images: `(reference, recipe)`, from the render crate's pinned defaults.
fn images() -> Vec<(String, Recipe)> {
    use kind_parity_render::config::{Ingress, Keycloak, Nats, Postgres, Redis};
    vec![
        (Ingress::default().image().to_owned(), Recipe::Traefik),
        (Postgres::default().image, Recipe::Postgres),
        (Redis::default().image, Recipe::Redis),
        (Keycloak::default().image, Recipe::Keycloak),
        (Nats::default().image, Recipe::Nats),
        (PYTHON_IMAGE.to_owned(), Recipe::Python),
    ]
}

/// The references of the stack's images, for the loader.
pub fn references() -> Vec<String> {
    images().into_iter().map(|(r, _)| r).collect()
}

/// The tag of a reference (`v3.5.3` of `docker.io/library/traefik:v3.5.3`).
fn tag(reference: &str) -> Result<&str> {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.split_once(':').map(|(_, t)| t).with_context(|| format!("{reference} has no tag to build at"))
}

/// Whether the engine has `image` made by this generation of its recipe.
fn current(image: &str, recipe: Recipe) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image, "--format", &format!("{{{{index .Config.Labels \"{RECIPE_LABEL}\"}}}}")])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == recipe.generation())
}

pub fn up(tb: &Testbed) -> Result<()> {
    let dir = tb.cache("stack-images");
    std::fs::create_dir_all(&dir)?;
    for (reference, recipe) in images() {
        ensure(tb, &dir, &reference, recipe)?;
    }
    say(format!("stack: images ready: {}", references().join(", ")));
    keycloak_up(tb)
}

/// The Keycloak the login probe's tests run against: the stack's image in `start-dev` (its
/// embedded database), on loopback. Tests make their own realms through its admin API.
const KEYCLOAK_CONTAINER: &str = "kind-parity-testbed-keycloak";
pub const KEYCLOAK_PORT: u16 = 18080;

fn keycloak_password(tb: &Testbed) -> Result<String> {
    let path = tb.dir.join("keycloak-admin-password");
    if let Ok(password) = std::fs::read_to_string(&path) {
        return Ok(password.trim().to_owned());
    }
    let mut bytes = [0_u8; 18];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_file(&path, password.as_bytes(), 0o600)?;
    Ok(password)
}

fn keycloak_up(tb: &Testbed) -> Result<()> {
    use kind_parity_render::config::Keycloak;
    let image = Keycloak::default().image;
    let running =
        super::docker::docker(&["inspect", KEYCLOAK_CONTAINER, "--format", "{{.State.Running}} {{.Config.Image}}"]);
    if running.is_ok_and(|r| r.trim() == format!("true {image}")) {
        return Ok(());
    }
    let _ = super::docker::docker(&["rm", "--force", KEYCLOAK_CONTAINER]);
    let password = keycloak_password(tb)?;
    super::docker::docker(&[
        "run",
        "--detach",
        "--name",
        KEYCLOAK_CONTAINER,
        "--publish",
        &format!("127.0.0.1:{KEYCLOAK_PORT}:8080"),
        "--env",
        "KC_BOOTSTRAP_ADMIN_USERNAME=admin",
        "--env",
        &format!("KC_BOOTSTRAP_ADMIN_PASSWORD={password}"),
        &image,
        "start-dev",
    ])
    .context("starting the test bed's Keycloak")?;
    say(format!("stack: starting Keycloak ({image}, start-dev) on 127.0.0.1:{KEYCLOAK_PORT}: about a minute"));
    let url = format!("http://127.0.0.1:{KEYCLOAK_PORT}/realms/master/.well-known/openid-configuration");
    proc::wait_for("keycloak", std::time::Duration::from_secs(240), &tb.log("keycloak"), || {
        Command::new("curl").args(["-sf", "-o", "/dev/null", &url]).status().is_ok_and(|s| s.success())
    })
    .map_err(|e| {
        let logs = super::docker::docker(&["logs", "--tail", "20", KEYCLOAK_CONTAINER]).unwrap_or_default();
        e.context(format!("last lines of `docker logs {KEYCLOAK_CONTAINER}`:\n{logs}"))
    })
}

pub fn keycloak_down() {
    let _ = super::docker::docker(&["rm", "--force", KEYCLOAK_CONTAINER]);
}

/// `KIND_PARITY_TEST_KEYCLOAK` (its URL) and `_KEYCLOAK_ADMIN` (`admin:PASSWORD`), when it runs.
pub fn env(tb: &Testbed) -> Vec<(String, String)> {
    let running = super::docker::docker(&["inspect", KEYCLOAK_CONTAINER, "--format", "{{.State.Running}}"]);
    match (running.as_deref().map(str::trim), keycloak_password(tb)) {
        (Ok("true"), Ok(password)) => vec![
            ("KIND_PARITY_TEST_KEYCLOAK".to_owned(), format!("http://127.0.0.1:{KEYCLOAK_PORT}")),
            ("KIND_PARITY_TEST_KEYCLOAK_ADMIN".to_owned(), format!("admin:{password}")),
        ],
        _ => Vec::new(),
    }
}

/// The image in the engine: already there, loaded from the cache, or built and saved.
fn ensure(tb: &Testbed, dir: &Path, reference: &str, recipe: Recipe) -> Result<()> {
    if current(reference, recipe) {
        return Ok(());
    }
    let tarball = dir.join(format!("{}-r{}.tar", reference.replace(['/', ':'], "_"), recipe.generation()));
    if tarball.exists() {
        proc::output(Command::new("docker").args(["load", "-q", "-i"]).arg(&tarball))?;
        if current(reference, recipe) {
            return Ok(());
        }
    }
    let version = tag(reference)?;
    say(format!("stack: making {reference} ({recipe:?} recipe; log {})", tb.log("build-stack").display()));
    match recipe {
        Recipe::Traefik => traefik(tb, reference, version, recipe)?,
        Recipe::Nats => nats(tb, reference, version, recipe)?,
        Recipe::Keycloak => keycloak(tb, reference, version, recipe)?,
        Recipe::Postgres => postgres(tb, reference, recipe)?,
        Recipe::Redis => redis(tb, reference, recipe)?,
        Recipe::Python => python(tb, reference, recipe)?,
    }
    node::save(reference, &tarball)
}

/// A `LABEL` line: the recipe generation and what the image is.
fn labels(recipe: Recipe, description: &str, version: &str) -> String {
    format!(
        "LABEL {RECIPE_LABEL}=\"{}\" org.opencontainers.image.version=\"{version}\" org.opencontainers.image.description=\"kind-parity test bed: {description}\"",
        recipe.generation()
    )
}

fn traefik(tb: &Testbed, reference: &str, version: &str, recipe: Recipe) -> Result<()> {
    let bin = GoBuild {
        name: "traefik",
        module: "github.com/traefik/traefik/v3",
        version,
        // Two fork replaces and an exclude in its go.mod, which `go install` refuses.
        wrap: Wrap::Copy { local_at: None },
        programs: &[("github.com/traefik/traefik/v3/cmd/traefik", "traefik")],
        ldflags: format!("-s -w -X github.com/traefik/traefik/v3/pkg/version.Version={version}"),
        expected: "6 minutes",
    }
    .ensure(tb)?;
    // The official image (traefik/traefik-library-image, v3.5 alpine/Dockerfile): traefik in
    // /usr/local/bin, CA certificates, `/entrypoint.sh` with `traefik` as its default command.
    // Busybox stands in for Alpine's shell. `webui/static` of the Go module holds a placeholder:
    // routing works, the dashboard is empty.
    let dockerfile = format!(
        "FROM {}\nCOPY traefik /usr/local/bin/traefik\nCOPY entrypoint.sh /entrypoint.sh\n\
         COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n\
         ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nEXPOSE 80\n\
         ENTRYPOINT [\"/entrypoint.sh\"]\nCMD [\"traefik\"]\n{}\n",
        node::POD_IMAGE,
        labels(recipe, &format!("Traefik {version} built from its Go module"), version)
    );
    node::docker_build(
        tb,
        reference,
        &dockerfile,
        &[
            ("traefik", &std::fs::read(bin.join("traefik"))?, 0o755),
            ("entrypoint.sh", TRAEFIK_ENTRYPOINT.as_bytes(), 0o755),
            ("ca-certificates.crt", &ca_certificates(tb)?, 0o644),
        ],
    )
}

fn nats(tb: &Testbed, reference: &str, version: &str, recipe: Recipe) -> Result<()> {
    let version = format!("v{}", version.trim_start_matches('v'));
    let bin = GoBuild {
        name: "nats-server",
        module: "github.com/nats-io/nats-server/v2",
        version: &version,
        wrap: Wrap::Require,
        programs: &[("github.com/nats-io/nats-server/v2", "nats-server")],
        ldflags: "-s -w".into(),
        expected: "2 minutes",
    }
    .ensure(tb)?;
    // The official image (nats-io/nats-docker, 2.11.x/scratch/Dockerfile).
    let dockerfile = format!(
        "FROM scratch\nCOPY nats-server /nats-server\nCOPY nats-server.conf /nats-server.conf\n\
         EXPOSE 4222 8222 6222\nENTRYPOINT [\"/nats-server\"]\nCMD [\"--config\", \"nats-server.conf\"]\n{}\n",
        labels(recipe, &format!("NATS {version} built from its Go module"), &version)
    );
    node::docker_build(
        tb,
        reference,
        &dockerfile,
        &[
            ("nats-server", &std::fs::read(bin.join("nats-server"))?, 0o755),
            ("nats-server.conf", NATS_CONF.as_bytes(), 0o644),
        ],
    )
}

fn keycloak(tb: &Testbed, reference: &str, version: &str, recipe: Recipe) -> Result<()> {
    let dist = download(
        tb,
        &format!(
            "https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/{version}/keycloak-quarkus-dist-{version}.tar.gz"
        ),
    )?;
    // Keycloak 26 runs on Java 17 (deprecated there) and 21; Debian 12 has 17.
    let root = debian_root(tb, "keycloak", &["openjdk-17-jre-headless"])?;
    let opt = root.path().join("opt");
    std::fs::create_dir_all(&opt)?;
    proc::output(Command::new("tar").arg("-C").arg(&opt).arg("-xzf").arg(&dist))?;
    std::fs::rename(opt.join(format!("keycloak-{version}")), opt.join("keycloak"))
        .with_context(|| format!("the distribution has no keycloak-{version} folder"))?;
    std::fs::create_dir_all(opt.join("keycloak/data"))?;
    // As the official image (keycloak/keycloak quarkus/container/Dockerfile): /opt/keycloak owned
    // by 1000:0 and group-writable (the first start writes its build there), a passwd entry.
    proc::output(Command::new("chown").args(["-R", "1000:0"]).arg(opt.join("keycloak")))?;
    proc::output(Command::new("chmod").args(["-R", "g+rwX"]).arg(opt.join("keycloak")))?;
    append(&root.path().join("etc/group"), "keycloak:x:0:root\n")?;
    append(&root.path().join("etc/passwd"), "keycloak:x:1000:0:keycloak user:/opt/keycloak:/sbin/nologin\n")?;
    import(
        root.path(),
        reference,
        &[
            "ENV LANG=C.UTF-8",
            "ENV KC_RUN_IN_CONTAINER=true",
            "USER 1000",
            "WORKDIR /opt/keycloak",
            "EXPOSE 8080 8443 9000",
            "ENTRYPOINT [\"/opt/keycloak/bin/kc.sh\"]",
            &labels(
                recipe,
                &format!("Keycloak {version} (Quarkus distribution from Maven Central) on Debian 12's OpenJDK 17"),
                version,
            ),
        ],
    )
}

fn postgres(tb: &Testbed, reference: &str, recipe: Recipe) -> Result<()> {
    let root = debian_root(tb, "postgres", &["postgresql-15"])?;
    let r = root.path();
    // Debian's package makes a cluster of its own; the entrypoint makes PGDATA's.
    for leftover in ["var/lib/postgresql/15", "etc/postgresql/15"] {
        let _ = std::fs::remove_dir_all(r.join(leftover));
    }
    // As the official image's Dockerfile: listen on every address in every new database.
    let sample = r.join("usr/share/postgresql/15/postgresql.conf.sample");
    let text = std::fs::read_to_string(&sample).context("postgresql.conf.sample")?;
    let text = text.replace("#listen_addresses = 'localhost'", "listen_addresses = '*'");
    std::fs::write(&sample, text)?;
    std::fs::create_dir_all(r.join("docker-entrypoint-initdb.d"))?;
    std::fs::create_dir_all(r.join("var/lib/postgresql/data"))?;
    write_file(&r.join("usr/local/bin/docker-entrypoint.sh"), POSTGRES_ENTRYPOINT.as_bytes(), 0o755)?;
    let version = debian_version(r, "postgresql-15")?;
    import(
        r,
        reference,
        &[
            "ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            "ENV PGDATA=/var/lib/postgresql/data",
            "EXPOSE 5432",
            "ENTRYPOINT [\"docker-entrypoint.sh\"]",
            "CMD [\"postgres\"]",
            &labels(
                recipe,
                &format!(
                    "a stand-in for {reference}: Debian 12's PostgreSQL {version} behind the official image's entrypoint contract"
                ),
                &version,
            ),
        ],
    )?;
    // As the official image: SIGINT is Postgres's fast shutdown (SIGTERM waits for every
    // client). `docker import` takes no STOPSIGNAL (Docker 20.10), a build on top does.
    node::docker_build(tb, reference, &format!("FROM {reference}\nSTOPSIGNAL SIGINT\n"), &[])
}

fn redis(tb: &Testbed, reference: &str, recipe: Recipe) -> Result<()> {
    let root = debian_root(tb, "redis", &["redis-server"])?;
    let r = root.path();
    std::fs::create_dir_all(r.join("data"))?;
    proc::output(Command::new("chroot").arg(r).args(["chown", "redis:redis", "/data"]))?;
    write_file(&r.join("usr/local/bin/docker-entrypoint.sh"), REDIS_ENTRYPOINT.as_bytes(), 0o755)?;
    let version = debian_version(r, "redis-server")?;
    import(
        r,
        reference,
        &[
            "WORKDIR /data",
            "EXPOSE 6379",
            "ENTRYPOINT [\"docker-entrypoint.sh\"]",
            "CMD [\"redis-server\"]",
            &labels(
                recipe,
                &format!(
                    "a stand-in for {reference}: Debian 12's Redis {version} behind the official image's entrypoint contract"
                ),
                &version,
            ),
        ],
    )
}

fn python(tb: &Testbed, reference: &str, recipe: Recipe) -> Result<()> {
    let root = debian_root(tb, "python", &["python3"])?;
    let r = root.path();
    // The official images name the interpreter `python` too.
    std::os::unix::fs::symlink("/usr/bin/python3", r.join("usr/local/bin/python"))?;
    let version = debian_version(r, "python3")?;
    import(
        r,
        reference,
        &[
            "ENV LANG=C.UTF-8",
            "CMD [\"python3\"]",
            &labels(recipe, &format!("a stand-in for {reference}: Debian 12's Python {version}"), &version),
        ],
    )
}

/// A Debian 12 root made by debootstrap with `packages`, in a folder removed on drop.
pub(super) fn debian_root(tb: &Testbed, name: &str, packages: &[&str]) -> Result<tempfile::TempDir> {
    apt_install(tb, &["debootstrap"])?;
    let parent = tb.cache("stack-roots");
    std::fs::create_dir_all(&parent)?;
    let root = tempfile::Builder::new().prefix(&format!("{name}-")).tempdir_in(&parent)?;
    // The downloaded packages are kept for the next image and the next cold build.
    let debs = tb.cache("debs");
    std::fs::create_dir_all(&debs)?;
    proc::logged(
        Command::new("debootstrap")
            .args(["--variant=minbase", &format!("--include={}", packages.join(",")), "--cache-dir"])
            .arg(&debs)
            .arg("bookworm")
            .arg(root.path())
            .arg(node::mirror()),
        &tb.log("build-stack"),
        &format!("debootstrap of the {name} image's root"),
    )?;
    for cache in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let dir = root.path().join(cache);
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(root)
}

/// The installed version of a Debian package in `root` (`15.14-0+deb12u1` → `15.14`).
fn debian_version(root: &Path, package: &str) -> Result<String> {
    let out = proc::output(Command::new("chroot").arg(root).args(["dpkg-query", "-W", "-f=${Version}", package]))?;
    let version = out.trim();
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    Ok(version.split(['-', '+', '~']).next().unwrap_or(version).to_owned())
}

/// `docker import` of `root` as `reference`, with Dockerfile instructions as `--change`s.
pub(super) fn import(root: &Path, reference: &str, changes: &[&str]) -> Result<()> {
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(root)
        .args(["--numeric-owner", "-cf", "-", "."])
        .stdout(Stdio::piped())
        .spawn()
        .context("running tar")?;
    let mut import = Command::new("docker");
    import.arg("import");
    for change in changes {
        import.arg("--change").arg(change);
    }
    let out = import
        .arg("-")
        .arg(reference)
        .stdin(tar.stdout.take().context("tar's stdout")?)
        .output()
        .context("running docker import")?;
    // The command holds the pipe's reading end: drop it, or a tar that outlived a failed import
    // blocks writing forever.
    drop(import);
    let tar_status = tar.wait()?;
    if !tar_status.success() || !out.status.success() {
        bail!("importing {reference} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn append(path: &Path, line: &str) -> Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new().append(true).open(path)?.write_all(line.as_bytes())?;
    Ok(())
}

/// The machine's CA bundle (Debian's ca-certificates), as the official images carry one.
fn ca_certificates(tb: &Testbed) -> Result<Vec<u8>> {
    let path = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if !path.exists() {
        apt_install(tb, &["ca-certificates"])?;
    }
    std::fs::read(path).context("reading /etc/ssl/certs/ca-certificates.crt")
}

/// A file from `url`, kept in `cache/downloads/`, checked against the `.sha256` Maven Central
/// publishes beside it.
fn download(tb: &Testbed, url: &str) -> Result<PathBuf> {
    use sha2::{Digest as _, Sha256};
    let dir = tb.cache("downloads");
    std::fs::create_dir_all(&dir)?;
    let name = url.rsplit('/').next().context("a URL with a file name")?;
    let path = dir.join(name);
    let expected = proc::output(Command::new("curl").args(["-sSfL", &format!("{url}.sha256")]))
        .with_context(|| format!("fetching {url}.sha256"))?;
    let expected = expected.split_whitespace().next().unwrap_or_default().to_owned();
    let matches = |p: &Path| {
        std::fs::read(p)
            .is_ok_and(|body| Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect::<String>() == expected)
    };
    if path.exists() && matches(&path) {
        return Ok(path);
    }
    say(format!("stack: downloading {url}"));
    let partial = path.with_extension("partial");
    proc::output(Command::new("curl").args(["-sSfL", "-o"]).arg(&partial).arg(url))
        .with_context(|| format!("downloading {url}"))?;
    if !matches(&partial) {
        bail!("{url} does not match its published SHA-256 {expected}");
    }
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_what_an_image_is_built_at() {
        assert_eq!(tag("docker.io/library/traefik:v3.5.3").unwrap(), "v3.5.3");
        assert_eq!(tag("localhost:5001/app:1.2").unwrap(), "1.2");
        assert!(tag("localhost:5001/app").is_err());
    }

    #[test]
    fn every_pinned_component_of_the_demo_has_a_recipe() {
        let refs = references();
        for needed in ["traefik:", "postgres:", "redis:", "keycloak:", "nats:", "python:"] {
            assert!(refs.iter().any(|r| r.contains(needed)), "{needed} missing from {refs:?}");
        }
    }
}
