//! Every class of bad input gets a message that says what is wrong, where, and what to write.

use std::fs;

use kind_parity_render::{LoadOptions, Override, load};

/// Loads `yaml` as kind-parity.yaml in a fresh folder that also holds `app/Dockerfile`, and
/// returns the error text with the folder replaced by `<dir>`.
fn error_of(yaml: &str, env: &[(&str, &str)], flags: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("app")).unwrap();
    fs::write(dir.path().join("app/Dockerfile"), "FROM scratch\n").unwrap();
    fs::write(dir.path().join("kind-parity.yaml"), yaml).unwrap();
    let options = LoadOptions {
        config: None,
        dir: dir.path().to_path_buf(),
        env: env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        overrides: flags
            .iter()
            .map(|(p, v)| Override { flag: format!("--set {p}={v}"), path: (*p).into(), value: (*v).into() })
            .collect(),
    };
    match load(&options) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e.to_string().replace(&dir.path().display().to_string(), "<dir>"),
    }
}

fn check(yaml: &str, expected: &str) {
    assert_eq!(error_of(yaml, &[], &[]), expected.trim_end(), "for config:\n{yaml}");
}

const API: &str = "services:\n  api:\n    build: { context: app }\n";

#[test]
fn unknown_keys_suggest_the_closest() {
    check(
        "nmae: demo\n",
        "invalid config: <dir>/kind-parity.yaml:1:1: unknown key `nmae`\n    help: did you mean `name`?",
    );
    check(
        &format!("{API}    prot: 8080\n"),
        "invalid config: <dir>/kind-parity.yaml:4:5: services.api: unknown key `prot`\n    help: did you mean `port`?",
    );
    check(
        "tls:\n  mode: self-signed\n",
        "invalid config: <dir>/kind-parity.yaml:2:3: tls.mode: unknown value `self-signed`\n    help: expected one of: local-ca",
    );
}

#[test]
fn wrong_types_and_syntax_name_the_line() {
    check(
        &format!("{API}    replicas: many\n"),
        "invalid config: <dir>/kind-parity.yaml:4:5: services.api.replicas: invalid type: string \"many\", expected u32",
    );
    check(
        "name: [unclosed\n",
        "invalid config: <dir>/kind-parity.yaml:2:1: not valid YAML: did not find expected ',' or ']'",
    );
}

#[test]
fn duplicate_hosts_and_ports() {
    check(
        &format!("{API}    ingress: {{ host: auth }}\n    port: 8080\n"),
        "invalid config: <dir>/kind-parity.yaml:4:16: services.api.ingress.host: host `auth.localtest.me` is already used by keycloak.host\n    help: give each browser-facing host its own name",
    );
    check(
        &format!("{API}    port: 5432\n"),
        "invalid config: <dir>/kind-parity.yaml:4:5: services.api.port: host port 5432 is already used by postgres.compose_port\n    help: give each published port its own number",
    );
    check(
        "ports: { http: 8080, https: 8080 }\n",
        "invalid config: <dir>/kind-parity.yaml:1:22: ports.https: http and https both use host port 8080\n    help: give them different ports, e.g. 8080 and 8443",
    );
}

#[test]
fn dependency_cycles_and_unknown_targets() {
    check(
        "services:\n  a:\n    image: x/a:1\n    port: 1\n    depends_on: [b]\n  b:\n    image: x/b:1\n    port: 2\n    depends_on: [a]\n",
        "invalid config: <dir>/kind-parity.yaml:5:5: services.a.depends_on: dependency cycle: a → b → a\n    help: remove one of these dependencies; startup order must be a chain, not a loop",
    );
    check(
        &format!("{API}    depends_on: [postgress]\n"),
        "invalid config: <dir>/kind-parity.yaml:4:18: services.api.depends_on[0]: `postgress` is not a service or a component\n    help: did you mean `postgres`?",
    );
    check(
        &format!("redis: {{ enabled: false }}\n{API}    depends_on: [redis]\n"),
        "invalid config: <dir>/kind-parity.yaml:5:18: services.api.depends_on[0]: `redis` is disabled\n    help: set `redis.enabled: true` or remove the dependency",
    );
}

#[test]
fn undefined_references() {
    check(
        &format!("{API}    env:\n      ISSUER: \"{{{{ keycloak.isuer }}}}\"\n"),
        "invalid config: <dir>/kind-parity.yaml:5:7: services.api.env.ISSUER: `keycloak.isuer` is not a contract value\n    help: did you mean `keycloak.issuer`?",
    );
    check(
        &format!("{API}    env:\n      DB: '{{{{ postgres.url \"orders\" }}}}'\n    port: 8080\n"),
        "invalid config: <dir>/kind-parity.yaml:5:7: services.api.env.DB: database `orders` is not declared\n    help: declare it under `postgres.databases` (declared: keycloak)",
    );
    check(
        &format!("secrets: {{ session-key: {{}} }}\n{API}    env:\n      KEY: '{{{{ secret \"sesion-key\" }}}}'\n"),
        "invalid config: <dir>/kind-parity.yaml:6:7: services.api.env.KEY: secret `sesion-key` is not defined\n    help: did you mean `session-key`?",
    );
    check(
        &format!("{API}    env:\n      WEB: \"{{{{ service.web.url }}}}\"\n    port: 8080\n"),
        "invalid config: <dir>/kind-parity.yaml:5:7: services.api.env.WEB: service `web` is not defined\n    help: services are: api",
    );
    check(
        &format!("{API}    env:\n      SELF: \"{{{{ service.api.url }}}}\"\n    port: 8080\n"),
        "invalid config: <dir>/kind-parity.yaml:5:7: services.api.env.SELF: service `api` has no ingress, so it has no browser-facing url\n    help: use `{{ service.api.internal_url }}` or give it an `ingress.host`",
    );
    check(
        &format!("nats: {{ enabled: false }}\n{API}    env:\n      NATS: \"{{{{ nats.url }}}}\"\n"),
        "invalid config: <dir>/kind-parity.yaml:6:7: services.api.env.NATS: `nats.url` refers to nats, which is disabled\n    help: set `nats.enabled: true` or remove the reference",
    );
}

#[test]
fn invalid_names() {
    check(
        "name: My_Env\n",
        "invalid config: <dir>/kind-parity.yaml:1:1: name: `My_Env` is not a valid environment name\n    help: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit",
    );
    check(
        &format!("{API}    ingress: {{ host: -api }}\n    port: 8080\n"),
        "invalid config: <dir>/kind-parity.yaml:4:16: services.api.ingress.host: `-api` is not a valid host label\n    help: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit",
    );
}

#[test]
fn services_need_an_image_source_that_exists() {
    check(
        "services:\n  api:\n    port: 8080\n",
        "invalid config: <dir>/kind-parity.yaml:2:3: services.api: the service has neither `build` nor `image`\n    help: add `build: { context: path/to/app }` to build it, or `image: registry/app:1.2.3` to run a prebuilt one",
    );
    check(
        "services:\n  api:\n    build: { context: missing }\n",
        "invalid config: <dir>/kind-parity.yaml:3:14: services.api.build.context: build context `missing` does not exist\n    help: give a folder relative to the config file",
    );
    check(
        "services:\n  api:\n    image: ghcr.io/acme/api\n",
        "invalid config: <dir>/kind-parity.yaml:3:5: services.api.image: image `ghcr.io/acme/api` is not pinned\n    help: add a version tag or a digest, e.g. `ghcr.io/acme/api:1.2.3`",
    );
    check(
        "keycloak:\n  realm_file: realm.json\n",
        "invalid config: <dir>/kind-parity.yaml:2:3: keycloak.realm_file: realm file `realm.json` does not exist\n    help: give a path relative to the config file, or remove `realm_file` to start with an empty realm",
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    let text = error_of("name: Bad\nservices:\n  api:\n    port: 8080\n", &[], &[]);
    assert!(text.starts_with("invalid config: 2 problems\n"), "{text}");
    assert!(text.contains("name: `Bad`") && text.contains("services.api: the service has neither"), "{text}");
}

#[test]
fn variables_and_flags_are_named_as_the_origin() {
    assert_eq!(
        error_of(API, &[("KIND_PARITY_POSTGRES__ENABLD", "false")], &[]),
        "invalid config: env KIND_PARITY_POSTGRES__ENABLD: postgres: unknown key `enabld`\n    help: did you mean `enabled`?"
    );
    assert_eq!(
        error_of(API, &[], &[("services.api.replicas", "-1")]),
        "invalid config: flag --set services.api.replicas=-1: services.api.replicas: invalid value: integer `-1`, expected u32"
    );
    assert_eq!(
        error_of(API, &[], &[("services..api", "1")]),
        "invalid config: flag --set services..api=1: `services..api` is not a config path\n    help: write a dotted path such as services.api.replicas=2"
    );
    // The test bed's own variables are not config values.
    let dir = tempfile::tempdir().unwrap();
    let ok = load(&LoadOptions {
        dir: dir.path().into(),
        env: vec![("KIND_PARITY_TEST_KUBECONFIG".into(), "/x".into()), ("KIND_PARITY_TESTBED_DIR".into(), "/y".into())],
        ..Default::default()
    });
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[test]
fn a_service_has_one_readiness_check() {
    check(
        &format!("{API}    health_path: /healthz\n    readiness_command: [test, -f, /tmp/ready]\n    port: 8080\n"),
        "invalid config: <dir>/kind-parity.yaml:5:5: services.api.readiness_command: `health_path` and `readiness_command` are both set\n    help: keep one: `health_path` for a service that answers HTTP, `readiness_command` for a worker",
    );
}

#[test]
fn an_artifact_must_be_a_file_that_fits_a_config_map() {
    check(
        "artifacts:\n  seed:\n    path: data/seed.sql\n",
        "invalid config: <dir>/kind-parity.yaml:3:5: artifacts.seed.path: no file at `data/seed.sql`\n    help: give a file's path relative to the config file",
    );
    check(
        "artifacts:\n  Seed_Data:\n    path: app/Dockerfile\n",
        "invalid config: <dir>/kind-parity.yaml:2:3: artifacts.Seed_Data: `Seed_Data` is not a valid artifact name\n    help: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit",
    );
}

#[test]
fn temporal_namespaces_have_temporals_names() {
    check(
        "temporal:\n  enabled: true\n  namespaces: [default, \"$(rm -rf /)\"]\n",
        "invalid config: <dir>/kind-parity.yaml:3:25: temporal.namespaces[1]: `$(rm -rf /)` is not a valid Temporal namespace name\n    help: use letters, digits, '.', '_' and '-'",
    );
}

#[test]
fn a_health_path_the_ingress_does_not_route_is_refused_with_the_fix() {
    // Regression (issue 10 #19): `/health` under `ingress.path: /api` was probed at a path the
    // Ingress does not route, so the route probe failed by construction.
    check(
        &format!("{API}    health_path: /health\n    ingress:\n      host: api\n      path: /api\n    port: 8080\n"),
        "invalid config: <dir>/kind-parity.yaml:4:5: services.api.health_path: the Ingress routes only `/api` to this service, so `/health` cannot be probed through it\n    help: serve the health check under the route and write `health_path: /api/health`, or route the whole host with `ingress.path: /`",
    );
    // Prefix paths match by whole elements: `/apihealth` is not under `/api`.
    assert!(
        error_of(
            &format!(
                "{API}    health_path: /apihealth\n    ingress:\n      host: api\n      path: /api\n    port: 8080\n"
            ),
            &[],
            &[]
        )
        .contains("cannot be probed through it")
    );
}

#[test]
fn vault_paths_that_the_seed_shell_would_expand_are_refused() {
    check(
        "vault:\n  enabled: true\n  paths:\n    secret/$(id):\n      key: s\nsecrets:\n  s: {}\n",
        "invalid config: <dir>/kind-parity.yaml:4:5: vault.paths.secret/$(id): `secret/$(id)` is not a usable Vault KV path\n    help: use letters, digits, '/', '_', '.' and '-', starting with the mount (`secret/app`)",
    );
}

#[test]
fn a_secret_shorter_than_16_characters_is_refused() {
    // Regression (issue 12): a secret could be declared with length 0 to 7, and the bundle
    // left such short values in clear.
    check(
        "secrets:\n  pin:\n    length: 4\n",
        "invalid config: <dir>/kind-parity.yaml:3:5: secrets.pin.length: a secret of 4 characters is not allowed\n    help: use 16 to 1024 characters (the default is 32)",
    );
}

#[test]
fn a_secret_of_a_hundred_million_characters_is_refused() {
    // Regression (issue 12): generating it took 51 s and 806 MB, in silence.
    check(
        "secrets:\n  huge:\n    length: 100000000\n",
        "invalid config: <dir>/kind-parity.yaml:3:5: secrets.huge.length: a secret of 100000000 characters is not allowed\n    help: use 16 to 1024 characters (the default is 32)",
    );
}

#[test]
fn a_realm_file_larger_than_its_secret_holds_is_refused() {
    // Regression (issue 12): a realm over the object size limit rendered, and the API server
    // refused it at apply.
    let dir = tempfile::tempdir().unwrap();
    let padding = "x".repeat(800 * 1024);
    fs::write(dir.path().join("realm.json"), format!(r#"{{"realm": "dev", "displayName": "{padding}"}}"#)).unwrap();
    fs::write(dir.path().join("kind-parity.yaml"), "keycloak:\n  realm_file: realm.json\n").unwrap();
    let error = load(&LoadOptions { dir: dir.path().into(), ..Default::default() }).unwrap_err().to_string();
    assert_eq!(
        error.replace(&dir.path().display().to_string(), "<dir>"),
        "invalid config: <dir>/kind-parity.yaml:2:3: keycloak.realm_file: realm file `realm.json` is 819235 bytes; its Secret holds at most 716800\n    help: keep the realm file to its settings and clients (a partial export) and create bulk data such as users at runtime"
    );
}

#[test]
fn every_type_error_and_unknown_key_is_listed_at_once() {
    // Regression (issue 12): serde stops at its first error, and only that one was shown.
    let yaml = "nmae: demo\nservices:\n  api:\n    build: { context: app }\n    replicas: many\n    prot: 8080\n    readiness_command:\n      - [a]\n      - ok\n      - [b]\n";
    check(
        yaml,
        "invalid config: 5 problems
  <dir>/kind-parity.yaml:1:1: unknown key `nmae`
      help: did you mean `name`?
  <dir>/kind-parity.yaml:5:5: services.api.replicas: invalid type: string \"many\", expected u32
  <dir>/kind-parity.yaml:6:5: services.api: unknown key `prot`
      help: did you mean `port`?
  <dir>/kind-parity.yaml:8:9: services.api.readiness_command[0]: invalid type: sequence, expected a string
  <dir>/kind-parity.yaml:10:9: services.api.readiness_command[2]: invalid type: sequence, expected a string",
    );
}

#[test]
fn type_errors_and_semantic_errors_are_listed_together_without_follow_on_errors() {
    // `build: 5` is dropped to check the rest; "neither `build` nor `image`" would be about it.
    check(
        "name: Bad\nservices:\n  api:\n    build: 5\n    replicas: many\n",
        "invalid config: 3 problems
  <dir>/kind-parity.yaml:1:1: name: `Bad` is not a valid environment name
      help: use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit
  <dir>/kind-parity.yaml:4:5: services.api.build: invalid type: integer `5`, expected struct Build
  <dir>/kind-parity.yaml:5:5: services.api.replicas: invalid type: string \"many\", expected u32",
    );
}

#[test]
fn problems_are_listed_by_line_number() {
    // Regression: they were sorted as text, which puts line 12 before line 2.
    let text = error_of("domain: bad domain\nname: Bad\n#\n#\n#\n#\n#\n#\n#\n#\n#\nnamespace: Bad\n", &[], &[]);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("  <dir>")).map(|l| &l[..27]).collect();
    assert_eq!(
        lines,
        ["  <dir>/kind-parity.yaml:1:", "  <dir>/kind-parity.yaml:2:", "  <dir>/kind-parity.yaml:12"],
        "{text}"
    );
}

#[test]
fn type_errors_of_variables_and_flags_are_listed_at_once() {
    assert_eq!(
        error_of(
            API,
            &[("KIND_PARITY_SERVICES__API__REPLICAS", "x"), ("KIND_PARITY_SERVICES__API__PORT", "y")],
            &[("services.api.health_path", "[1]")]
        ),
        "invalid config: 3 problems
  env KIND_PARITY_SERVICES__API__PORT: services.api.port: invalid type: string \"y\", expected u16
  env KIND_PARITY_SERVICES__API__REPLICAS: services.api.replicas: invalid type: string \"x\", expected u32
  flag --set services.api.health_path=[1]: services.api.health_path: invalid type: sequence, expected a string"
    );
}

#[test]
fn an_empty_config_file_is_an_error() {
    // Regression (issue 12): an empty kind-parity.yaml rendered an environment of defaults in silence.
    check(
        "# nothing yet\n",
        "invalid config: <dir>/kind-parity.yaml:1:1: the config file is empty\n    help: describe the stack in it (docs/config.md), or delete it to use the embedded demo stack",
    );
}

#[test]
fn a_tab_in_the_indentation_says_so() {
    // Regression (issue 12): "found character that cannot start any token".
    check(
        "name: x\nservices:\n\tapi:\n",
        "invalid config: <dir>/kind-parity.yaml:3:1: a tab in the indentation\n    help: YAML indents with spaces only: replace the tab with spaces",
    );
}

#[test]
fn a_byte_order_mark_inside_the_file_says_so() {
    // Regression (issue 12): "did not find expected key", about an invisible character.
    check(
        "name: x\n\u{feff}domain: a.b\n",
        "invalid config: <dir>/kind-parity.yaml:2:1: a byte order mark (U+FEFF) inside the file\n    help: save the file as UTF-8 without a BOM, or delete the invisible character at this position",
    );
}

#[test]
fn a_byte_order_mark_at_the_start_is_allowed_and_positions_count_without_it() {
    check(
        "\u{feff}nmae: x\n",
        "invalid config: <dir>/kind-parity.yaml:1:1: unknown key `nmae`\n    help: did you mean `name`?",
    );
}

#[test]
fn a_service_name_kubernetes_refuses_for_a_service_is_refused() {
    // Regression (issue 12): `1worker` rendered, and the API server refused its Service at apply.
    check(
        "services:\n  1worker:\n    image: x/worker:1\n    port: 9000\n",
        "invalid config: <dir>/kind-parity.yaml:2:3: services.1worker: `1worker` is not a valid service name\n    help: use 1-63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit (it names a Kubernetes Service)",
    );
}

#[test]
fn a_service_named_like_a_component_is_refused() {
    // Regression (issue 12): a service `redis` replaced the platform's Deployment and KP_REDIS_*.
    check(
        "services:\n  redis:\n    image: x/cache:1\n    port: 9000\n",
        "invalid config: <dir>/kind-parity.yaml:2:3: services.redis: `redis` is the name of the platform's redis Service and of the compose variables KP_REDIS_*\n    help: rename the service, e.g. `redis-app`",
    );
}

#[test]
fn a_service_named_like_the_compose_postgres_guard_is_refused() {
    // `postgres-guard` is a service of the rendered compose.yaml: a service of that name would
    // replace it there.
    check(
        "services:\n  postgres-guard:\n    image: x/guard:1\n    port: 9000\n",
        "invalid config: <dir>/kind-parity.yaml:2:3: services.postgres-guard: `postgres-guard` is the name of the platform's postgres-guard Service\n    help: rename the service, e.g. `postgres-guard-app`",
    );
}

#[test]
fn an_environment_name_longer_than_kind_allows_is_refused() {
    // Regression (issue 12): kind refuses cluster names over 50 characters, after the render.
    let name = "a".repeat(51);
    check(
        &format!("name: {name}\n"),
        &format!(
            "invalid config: <dir>/kind-parity.yaml:1:1: name: `{name}` has 51 characters; kind allows at most 50 in a cluster name\n    help: use a shorter name (kind appends `-control-plane` to it for its node's host name)"
        ),
    );
}

#[test]
fn replicas_beyond_a_deployments_int32_are_refused() {
    // Regression (issue 12): 4000000000 fit the u32 and not the Deployment's int32.
    check(
        &format!("{API}    replicas: 4000000000\n"),
        "invalid config: <dir>/kind-parity.yaml:4:5: services.api.replicas: 4000000000 replicas is more than a Deployment holds (2147483647)\n    help: use a number of replicas a kind cluster can run, e.g. 1 to 3",
    );
}

#[test]
fn an_ingress_ip_outside_the_service_range_is_refused() {
    // Regression (issue 12): the API server refused the ingress Service at apply.
    check(
        "ingress:\n  cluster_ip: 192.168.1.10\n",
        "invalid config: <dir>/kind-parity.yaml:2:3: ingress.cluster_ip: 192.168.1.10 is outside the cluster's Service range 10.96.0.0/16\n    help: pick an address in it that nothing else takes, e.g. the default 10.96.0.200",
    );
}

#[test]
fn an_ingress_ip_the_cluster_dns_takes_is_refused() {
    check(
        "ingress:\n  cluster_ip: 10.96.0.10\n",
        "invalid config: <dir>/kind-parity.yaml:2:3: ingress.cluster_ip: 10.96.0.10 is the cluster DNS's address (kube-dns)\n    help: pick another address of the range, e.g. the default 10.96.0.200",
    );
}

#[test]
fn an_image_with_arguments_after_it_is_not_a_reference() {
    // Regression (issue 12): `nginx:1.27 --privileged` passed as pinned.
    check(
        "services:\n  api:\n    image: \"nginx:1.27 --privileged\"\n",
        "invalid config: <dir>/kind-parity.yaml:3:5: services.api.image: `nginx:1.27 --privileged` is not an image reference: invalid reference format\n    help: an image reference has no spaces: write `registry/name:tag` alone",
    );
}

#[test]
fn an_image_with_uppercase_letters_is_not_a_reference() {
    // Regression (issue 12): `UPPER/Case:1.0` passed, and no registry has it.
    check(
        "services:\n  api:\n    image: UPPER/Case:1.0\n",
        "invalid config: <dir>/kind-parity.yaml:3:5: services.api.image: `UPPER/Case:1.0` is not an image reference: invalid reference format\n    help: repository names are lowercase: `upper/case:1.0`",
    );
}

#[test]
fn a_dockerfile_outside_its_build_context_is_refused() {
    // Regression (issue 12): the build failed as "is Docker running?".
    check(
        "services:\n  api:\n    build:\n      context: app\n      dockerfile: ../Dockerfile\n",
        "invalid config: <dir>/kind-parity.yaml:5:7: services.api.build.dockerfile: the Dockerfile `../Dockerfile` is outside the build context `app`\n    help: Docker reads the Dockerfile from the context it is sent: move it into the context, or make the context a folder that holds both",
    );
}

#[test]
fn quantities_kubernetes_accepts_are_accepted() {
    // Regression (issue 12): `cpu: 1` was a type error and `1e9` was refused.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("app")).unwrap();
    fs::write(dir.path().join("app/Dockerfile"), "FROM scratch\n").unwrap();
    fs::write(
        dir.path().join("kind-parity.yaml"),
        format!("{API}    resources:\n      cpu: 1\n      memory: \"1e9\"\n  web:\n    build: {{ context: app }}\n    port: 8090\n    resources: {{ cpu: 0.5, memory: 1e9 }}\n"),
    )
    .unwrap();
    let loaded = load(&LoadOptions { dir: dir.path().into(), ..Default::default() }).unwrap();
    let resources = |name: &str| loaded.config.services[name].resources.clone();
    assert_eq!((resources("api").cpu.as_str(), resources("api").memory.as_str()), ("1", "1e9"));
    assert_eq!((resources("web").cpu.as_str(), resources("web").memory.as_str()), ("0.5", "1000000000"));
}

#[test]
fn a_quantity_kubernetes_refuses_says_why() {
    check(
        &format!("{API}    resources:\n      memory: 1KB\n"),
        "invalid config: <dir>/kind-parity.yaml:5:7: services.api.resources.memory: `1KB` is not a Kubernetes quantity: its suffix is none of n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent such as e9\n    help: write e.g. `100m` or `1` for CPU, `256Mi` or `1e9` for memory",
    );
}

#[test]
fn a_reference_in_args_is_refused_where_it_is_written() {
    // Arguments are readable by every user of the node: contract values travel in env.
    check(
        &format!("{API}    args: [--verbose, '{{{{ postgres.url \"app\" }}}}']\n"),
        "invalid config: <dir>/kind-parity.yaml:4:23: services.api.args[1]: `args` takes no references: arguments are passed literally\n    help: put the value in `env` and read it in the process (or `sh -c '… \"$VAR\"'`)",
    );
}

#[test]
fn what_needs_a_port_says_so_where_it_is_written() {
    check(
        &format!("{API}    ingress: {{ host: api }}\n"),
        "invalid config: <dir>/kind-parity.yaml:4:5: services.api.ingress: the service has a route but no `port`\n    help: set `port` to the container port it listens on (it was 8080 by default before ports became optional)",
    );
    check(
        &format!(
            "{API}  web:\n    image: x/web:1\n    port: 8080\n    env:\n      API: \"{{{{ service.api.internal_url }}}}\"\n"
        ),
        "invalid config: <dir>/kind-parity.yaml:8:7: services.web.env.API: service `api` has no `port`, so it serves nothing to call\n    help: give `services.api.port` the port it listens on, or remove the reference",
    );
}

#[test]
fn a_probe_has_one_check() {
    check(
        &format!("{API}    port: 8080\n    liveness: {{ path: /livez, command: [\"true\"] }}\n"),
        "invalid config: <dir>/kind-parity.yaml:5:5: services.api.liveness: `liveness` needs exactly one of `path` and `command`\n    help: give `path` for a service that answers HTTP on its port, `command` for one that does not",
    );
    check(
        &format!("{API}    startup: {{ path: /started }}\n"),
        "invalid config: <dir>/kind-parity.yaml:4:16: services.api.startup.path: `startup.path` is checked on the service's port, and it has no `port`\n    help: set `port`, or check with a `command`",
    );
}

const GATEWAY: &str = "services:\n  gw:\n    image: x/gw:1\n";

#[test]
fn named_ports_are_checked_where_they_are_written() {
    check(
        &format!("{GATEWAY}    port: 8080\n    ports: {{ http: 8080 }}\n"),
        "invalid config: <dir>/kind-parity.yaml:5:5: services.gw.ports: the service has both `port` and `ports`\n    help: keep one: `port: N` for a single port, `ports` to name several",
    );
    check(
        &format!("{GATEWAY}    ports:\n      gRPC_port: 9090\n"),
        "invalid config: <dir>/kind-parity.yaml:5:7: services.gw.ports.gRPC_port: `gRPC_port` is not a valid port name\n    help: use at most 15 lowercase letters, digits and '-', with a letter, no '-' first, last or twice in a row (Kubernetes names container ports so)",
    );
    check(
        &format!("{GATEWAY}    ports:\n      http: 8080\n      web: {{ port: 8080, compose_port: 18080 }}\n"),
        "invalid config: <dir>/kind-parity.yaml:6:14: services.gw.ports.web.port: container port 8080/TCP is already port `http`\n    help: give each port its own number: a Service cannot have one twice",
    );
    check(
        &format!("{GATEWAY}    ports:\n      dns: {{ port: 53, protocol: udp }}\n"),
        "invalid config: <dir>/kind-parity.yaml:5:24: services.gw.ports.dns.protocol: unknown value `udp`\n    help: expected one of: TCP, UDP",
    );
    check(
        &format!("{GATEWAY}    ports:\n      http: {{ port: 8080, compose: 3000 }}\n"),
        "invalid config: <dir>/kind-parity.yaml:5:27: services.gw.ports.http: unknown key `compose`\n    help: did you mean `compose_port`?",
    );
}

#[test]
fn a_named_port_must_exist_and_serve_http_where_http_is_checked() {
    check(
        &format!("{GATEWAY}    ports: {{ http: 8080 }}\n    ingress: {{ host: gw, port: grcp }}\n"),
        "invalid config: <dir>/kind-parity.yaml:5:26: services.gw.ingress.port: the service has no port `grcp`\n    help: its ports are: http",
    );
    check(
        &format!("{GATEWAY}    ports:\n      dns: {{ port: 53, protocol: UDP }}\n    health_path: /healthz\n"),
        "invalid config: <dir>/kind-parity.yaml:6:5: services.gw.health_path: `health_path` needs a TCP port, and port `dns` is UDP\n    help: name a TCP port of the service (the main port, the first listed, is used when none is named)",
    );
    check(
        &format!(
            "{GATEWAY}    ports: {{ http: 8080, admin: 9901 }}\n    ingress: {{ host: gw }}\n    health_path: /healthz\n    health_port: admin\n"
        ),
        "invalid config: <dir>/kind-parity.yaml:7:5: services.gw.health_port: `health_path` is checked through the Ingress, which leads to port `http`, but it is served on `admin`\n    help: serve the health check on the routed port, or route `ingress.port` to the one that serves it",
    );
}

#[test]
fn compose_port_variables_do_not_collide() {
    check(
        &format!("{GATEWAY}    ports: {{ http: 8080, grpc: 9090 }}\n  gw-grpc:\n    image: x/gw:1\n    port: 7070\n"),
        "invalid config: <dir>/kind-parity.yaml:7:5: services.gw-grpc.port: its compose variable KP_GW_GRPC_PORT is already services.gw.ports.grpc's\n    help: rename the port or the service",
    );
    check(
        &format!("{GATEWAY}    ports: {{ http: 8080 }}\n    compose: {{ port: 3000 }}\n"),
        "invalid config: <dir>/kind-parity.yaml:5:16: services.gw.compose.port: `compose.port` is the host port of the `port` shorthand; with `ports`, each port has its own\n    help: write `ports.http.compose_port` instead",
    );
}

#[test]
fn a_mount_is_checked_where_it_is_written() {
    check(
        &format!("{GATEWAY}    files:\n      - {{ path: etc/app.yaml, source: app/Dockerfile }}\n"),
        "invalid config: <dir>/kind-parity.yaml:5:11: services.gw.files[0].path: `etc/app.yaml` is not an absolute path in the container\n    help: write the path the process reads, e.g. `/etc/app/config.yaml` (no `.`, `..` or trailing `/`)",
    );
    check(
        &format!("{GATEWAY}    files:\n      - {{ path: /etc/app.yaml, source: app/missing.yaml }}\n"),
        "invalid config: <dir>/kind-parity.yaml:5:32: services.gw.files[0].source: no file or folder at `app/missing.yaml`\n    help: give a path relative to the config file",
    );
    check(
        &format!(
            "{GATEWAY}    files:\n      - {{ path: /run/key, secret: sesion-key }}\nsecrets:\n  session-key: {{}}\n"
        ),
        "invalid config: <dir>/kind-parity.yaml:5:27: services.gw.files[0].secret: secret `sesion-key` is not defined\n    help: did you mean `session-key`?",
    );
    check(
        &format!("{GATEWAY}    files:\n      - {{ path: /run/key, source: app/Dockerfile, secret: x }}\n"),
        "invalid config: <dir>/kind-parity.yaml:5:9: services.gw.files[0]: a mount needs exactly one of `source` and `secret`\n    help: give `source` for a repository file or folder, `secret` for a generated secret",
    );
    check(
        &format!(
            "{GATEWAY}    env: {{ APP_CONFIG: x }}\n    files:\n      - {{ path: /etc/app, source: app, env: APP_CONFIG }}\n"
        ),
        "invalid config: <dir>/kind-parity.yaml:6:40: services.gw.files[0].env: `APP_CONFIG` is also set in the service's env\n    help: keep one: `files[].env` sets it to the mounted path in both modes",
    );
}
