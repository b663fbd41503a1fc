//! Each command's `--help` offers the flags it uses and no other: read from the clap definition
//! the binary parses with (`Cli::command()`), so a flag a command ignores cannot creep back in.

use clap::{CommandFactory as _, Parser as _};
use kind_parity::Cli;

/// The flags every command takes (the `global` ones of `Cli`).
const GLOBAL: &[&str] = &["output", "color", "verbose", "quiet"];
/// `--config`, `--name`, `--set`: which config, for the commands that load one.
const SOURCE: &[&str] = &["config", "name", "set"];
/// `--state-dir`: for the commands that read or write an environment's state.
const STATE: &[&str] = &["state-dir"];
/// `--cluster`, `--kubeconfig`, `--context`: which cluster.
const TARGET: &[&str] = &["cluster", "kubeconfig", "context"];
/// How `apply` and `up` wait.
const WAIT: &[&str] = &["timeout", "unschedulable-grace", "no-wait"];

/// The command line with its global flags propagated to every command, as the parser sees it.
fn built() -> clap::Command {
    let mut command = Cli::command();
    command.build();
    command
}

/// The long flags `command` offers besides the global ones and `--help`, sorted.
fn own_flags(command: &str) -> Vec<String> {
    let cli = built();
    let sub = cli.find_subcommand(command).unwrap_or_else(|| panic!("no command {command}"));
    let mut flags: Vec<String> = sub
        .get_arguments()
        .filter(|a| !a.is_global_set())
        .filter_map(|a| a.get_long().map(str::to_owned))
        .filter(|long| long != "help" && long != "version")
        .collect();
    flags.sort();
    flags
}

fn sorted(groups: &[&[&str]]) -> Vec<String> {
    let mut flags: Vec<String> = groups.iter().flat_map(|g| g.iter().map(|f| (*f).to_owned())).collect();
    flags.sort();
    flags
}

#[test]
fn each_command_offers_exactly_the_flags_it_uses() {
    let expected: &[(&str, &[&[&str]])] = &[
        ("render", &[SOURCE, STATE, &["out", "templates", "drift"]]),
        ("config", &[SOURCE, &["explain"]]),
        ("apply", &[SOURCE, STATE, TARGET, &["allow-context"], WAIT, &["force", "export-kubeconfig"]]),
        ("up", &[SOURCE, STATE, TARGET, &["allow-context"], WAIT, &["force", "export-kubeconfig", "skip-validate"]]),
        ("doctor", &[SOURCE, STATE]),
        ("status", &[SOURCE, STATE, TARGET]),
        ("logs", &[SOURCE, STATE, TARGET, &["out"]]),
        ("build", &[SOURCE, STATE]),
        ("load", &[SOURCE]),
        ("validate", &[SOURCE, STATE, TARGET, &["junit", "ingress", "postgres", "redis", "nats", "temporal"]]),
        ("down", &[SOURCE, STATE, TARGET, &["allow-context", "yes"]]),
        (
            "reset",
            &[SOURCE, STATE, TARGET, &["allow-context"], WAIT, &["force", "export-kubeconfig", "skip-validate", "yes"]],
        ),
        ("completions", &[]),
        ("init", &[&["config", "name", "force", "from-compose", "profile", "schema"]]),
        ("schema", &[]),
    ];
    let commands: Vec<String> =
        built().get_subcommands().map(|s| s.get_name().to_owned()).filter(|n| n != "help").collect();
    let listed: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    assert_eq!(commands, listed, "every command is listed here, in the order of `--help`");
    for (command, groups) in expected {
        assert_eq!(own_flags(command), sorted(groups), "the flags of `{command}`");
    }
}

#[test]
fn every_command_takes_the_global_flags() {
    let cli = built();
    for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
        let longs: Vec<&str> = sub.get_arguments().filter_map(|a| a.get_long()).collect();
        for flag in GLOBAL {
            assert!(longs.contains(flag), "`{}` lacks --{flag}: {longs:?}", sub.get_name());
        }
    }
}

#[test]
fn status_help_offers_no_flag_of_the_commands_that_change_a_cluster() {
    // Regression (issue 11): `status --help` offered --force, --no-wait and --skip-validate,
    // which it ignored.
    let mut cli = built();
    let help = cli.find_subcommand_mut("status").expect("status").render_long_help().to_string();
    for flag in ["--force", "--no-wait", "--skip-validate", "--timeout", "--allow-context", "--yes"] {
        assert!(!help.contains(flag), "`status --help` offers {flag}:\n{help}");
    }
    assert!(help.contains("--context"), "{help}");
}

#[test]
fn a_flag_a_command_does_not_use_is_a_usage_error() {
    for line in
        ["status --force", "status --no-wait", "down --timeout 5m", "down --skip-validate", "apply --skip-validate"]
    {
        let error = Cli::try_parse_from(std::iter::once("kind-parity").chain(line.split(' ')))
            .expect_err(&format!("`{line}` parses"));
        assert_eq!(error.kind(), clap::error::ErrorKind::UnknownArgument, "{line}: {error}");
        assert_eq!(error.exit_code(), 2, "{line}");
    }
}

#[test]
fn the_flags_the_commands_use_still_parse() {
    for line in [
        "up --timeout 15m --skip-validate --force --allow-context dev --export-kubeconfig",
        "apply --cluster existing --context dev --allow-context dev --no-wait --force",
        "reset --yes --timeout 15m --no-wait",
        "down --yes --cluster existing --allow-context dev",
        "status --cluster existing --kubeconfig k --context dev",
        "--config kind-parity.yaml render --out o",
    ] {
        if let Err(e) = Cli::try_parse_from(std::iter::once("kind-parity").chain(line.split(' '))) {
            panic!("`{line}`: {e}");
        }
    }
}

#[test]
fn completions_and_schema_offer_no_config_or_state_flags() {
    // Regression (issue 11): every command offered --config, --set and --state-dir, which
    // `completions` and `schema` ignore (and `config` and `load` ignore --state-dir).
    for (command, refused) in [
        ("completions", &["config", "name", "set", "state-dir"][..]),
        ("schema", &["config", "name", "set", "state-dir"][..]),
        ("config", &["state-dir"][..]),
        ("load", &["state-dir"][..]),
    ] {
        let flags = own_flags(command);
        for flag in refused {
            assert!(!flags.iter().any(|f| f == flag), "`{command}` offers --{flag}: {flags:?}");
        }
    }
}

#[test]
fn config_flags_before_the_command_and_after_it_combine() {
    // `kind-parity --set a=1 render --set b=2` (the README's form, and the command's own).
    let cli = Cli::try_parse_from([
        "kind-parity",
        "--set",
        "a=1",
        "--state-dir",
        "s",
        "--name",
        "before",
        "render",
        "--set",
        "b=2",
        "--name",
        "after",
    ])
    .unwrap();
    let global = cli.global();
    assert_eq!(global.set, ["a=1", "b=2"], "in order, the command's last");
    assert_eq!(global.name.as_deref(), Some("after"), "the command's own wins");
    assert_eq!(global.state_dir, std::path::Path::new("s"));
    let defaults = Cli::try_parse_from(["kind-parity", "status"]).unwrap().global();
    assert_eq!(defaults.state_dir, std::path::Path::new(".kind-parity"));
}

#[test]
fn the_output_help_says_where_human_results_go() {
    // Regression (issue 11): it said human output goes to stderr, while `config` and `status`
    // print their results on stdout (tests/output.rs checks that side).
    let cli = built();
    let output = cli.get_arguments().find(|a| a.get_long() == Some("output")).expect("--output");
    let human = output.get_possible_values().into_iter().find(|v| v.get_name() == "human").expect("human");
    let help = human.get_help().map(ToString::to_string).unwrap_or_default();
    assert!(help.contains("results on stdout") && help.contains("messages on stderr"), "{help}");
}
