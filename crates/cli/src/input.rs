//! Reading secrets and other input: passwords from standard input or a
//! terminal prompt, and files (or `-` for standard input). Secrets never
//! come from command-line arguments, which other users can see in `ps`.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::{Command, Stdio};

use crate::error::{CliError, CliResult};

/// All of standard input, without its trailing newline (`--password-stdin`).
pub fn secret_from_stdin(what: &str) -> CliResult<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::usage(format!("cannot read the {what} from standard input: {e}")))?;
    let secret = text.trim_end_matches(['\n', '\r']).to_owned();
    if secret.is_empty() {
        return Err(CliError::usage(format!("no {what} on standard input")));
    }
    Ok(secret)
}

/// The lines of standard input, without their line ends (`--password-stdin`
/// when more than one secret is read).
pub fn lines_from_stdin(what: &str) -> CliResult<Vec<String>> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::usage(format!("cannot read the {what} from standard input: {e}")))?;
    Ok(text.lines().map(|l| l.trim_end_matches('\r').to_owned()).collect())
}

/// Asks on standard error and reads one line from standard input.
pub fn prompt_line(prompt: &str) -> CliResult<String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))?;
    if n == 0 {
        return Err(CliError::usage("standard input ended before an answer was given"));
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Asks for a secret; on a terminal, echo is turned off while it is typed.
pub fn prompt_secret(prompt: &str) -> CliResult<String> {
    let hidden = std::io::stdin().is_terminal() && stty("-echo");
    let answer = prompt_line(prompt);
    if hidden {
        stty("echo");
        eprintln!();
    }
    let answer = answer?;
    if answer.is_empty() {
        return Err(CliError::usage("no password given"));
    }
    Ok(answer)
}

/// Asks for a new password twice, until both match.
pub fn prompt_new_password(prompt: &str) -> CliResult<String> {
    let first = prompt_secret(prompt)?;
    let again = prompt_secret("Repeat it: ")?;
    if first != again {
        return Err(CliError::usage("the passwords do not match"));
    }
    Ok(first)
}

/// Switches terminal echo with `stty`; `false` when that is not possible.
fn stty(arg: &str) -> bool {
    Command::new("stty")
        .arg(arg)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A file's text, or standard input's when the path is `-`.
pub fn read_file(path: &str, what: &str) -> CliResult<String> {
    let text = if path == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    };
    text.map_err(|e| CliError::usage(format!("cannot read the {what} from {path}: {e}")))
}

/// At most one input may come from standard input.
pub fn at_most_one_stdin(paths: &[Option<&str>]) -> CliResult<()> {
    if paths.iter().filter(|p| **p == Some("-")).count() > 1 {
        return Err(CliError::usage("only one input can come from standard input (-)"));
    }
    Ok(())
}
