//! Each command's `--help` offers the flags it uses and no other: read from the clap definition
//! the binary parses with (`Cli::command()`), so a flag a command ignores cannot creep back in.

use clap::{CommandFactory as _, Parser as _};
use kind_parity::Cli;

/// The flags every command takes (the `global` ones of `Cli`).
const GLOBAL: &[&str] = &["config", "name", "set", "state-dir", "output", "color", "verbose", "quiet"];
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
        ("render", &[&["out", "templates", "drift"]]),
        ("config", &[&["explain"]]),
        ("apply", &[TARGET, &["allow-context"], WAIT, &["force", "export-kubeconfig"]]),
        ("up", &[TARGET, &["allow-context"], WAIT, &["force", "export-kubeconfig", "skip-validate"]]),
        ("doctor", &[]),
        ("status", &[TARGET]),
        ("logs", &[TARGET, &["out"]]),
        ("build", &[]),
        ("load", &[]),
        ("validate", &[TARGET, &["junit", "ingress", "postgres", "redis", "nats", "temporal"]]),
        ("down", &[TARGET, &["allow-context", "yes"]]),
        ("reset", &[TARGET, &["allow-context"], WAIT, &["force", "export-kubeconfig", "skip-validate", "yes"]]),
        ("completions", &[]),
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
fn the_output_help_says_where_human_results_go() {
    // Regression (issue 11): it said human output goes to stderr, while `config` and `status`
    // print their results on stdout (tests/output.rs checks that side).
    let cli = built();
    let output = cli.get_arguments().find(|a| a.get_long() == Some("output")).expect("--output");
    let human = output.get_possible_values().into_iter().find(|v| v.get_name() == "human").expect("human");
    let help = human.get_help().map(ToString::to_string).unwrap_or_default();
    assert!(help.contains("results on stdout") && help.contains("messages on stderr"), "{help}");
}
