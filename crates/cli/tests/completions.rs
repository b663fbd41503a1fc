//! `kind-parity completions SHELL`: a script generated from the clap definitions, on stdout,
//! that knows every command.

use assert_cmd::Command;
use clap::CommandFactory as _;

/// The commands a user types (clap adds `help` to each script itself).
fn commands() -> Vec<String> {
    kind_parity::Cli::command().get_subcommands().map(|s| s.get_name().to_owned()).collect()
}

/// Runs `kind-parity completions <shell>` and checks that the script offers every command, in
/// the form the shell's script lists one (`entry` makes it from a command's name), and knows an
/// option of a command (`--allow-context` of `up`).
fn check(shell: &str, entry: impl Fn(&str) -> String) {
    let output = Command::cargo_bin("kind-parity").unwrap().args(["completions", shell]).output().unwrap();
    assert!(output.status.success(), "{shell}: {}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty(), "{shell}: nothing on stderr: {}", String::from_utf8_lossy(&output.stderr));
    let script = String::from_utf8(output.stdout).unwrap();
    for command in commands() {
        let expected = entry(&command);
        assert!(script.contains(&expected), "the {shell} script has no `{expected}`");
    }
    assert!(script.contains("allow-context"), "the {shell} script does not know `up --allow-context`");
}

#[test]
fn bash_completion_names_every_command() {
    // The case of the command line's words that completes the command's own options.
    check("bash", |command| format!("kind__parity,{command})"));
}

/// What bash completes for `words` (the last one is the word being completed) with the script
/// of `kind-parity completions bash` loaded, as bash itself runs it on TAB.
fn bash_completes(words: &[&str]) -> Vec<String> {
    let output = Command::cargo_bin("kind-parity").unwrap().args(["completions", "bash"]).output().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("kind-parity.bash");
    std::fs::write(&script, &output.stdout).unwrap();
    let words_list: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let (current, previous) = (words[words.len() - 1], words[words.len() - 2]);
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _kind__parity kind-parity '{current}' '{previous}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words_list.join(" "),
        words.len() - 1
    );
    let completed = std::process::Command::new("bash").args(["--norc", "-c", &program]).output().expect("bash runs");
    assert!(completed.status.success(), "{}", String::from_utf8_lossy(&completed.stderr));
    String::from_utf8(completed.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_a_command_from_its_start() {
    assert_eq!(bash_completes(&["kind-parity", "va"]), ["validate"]);
}

#[test]
fn bash_completes_the_options_of_a_command() {
    // Regression: clap_complete's script never matched a command of a hyphenated binary, so
    // `kind-parity up --allow<TAB>` completed nothing (clap-rs/clap#6421).
    assert_eq!(bash_completes(&["kind-parity", "up", "--allow"]), ["--allow-context"]);
}

#[test]
fn zsh_completion_names_every_command() {
    // The command with its description, in the list of commands.
    check("zsh", |command| format!("'{command}:"));
}

#[test]
fn fish_completion_names_every_command() {
    // Offered where a command is expected.
    check("fish", |command| format!("-n \"__fish_kind_parity_needs_command\" -f -a \"{command}\""));
}

#[test]
fn an_unknown_shell_is_a_usage_error_listing_the_known_ones() {
    let output = Command::cargo_bin("kind-parity").unwrap().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bash") && stderr.contains("zsh") && stderr.contains("fish"), "{stderr}");
}
