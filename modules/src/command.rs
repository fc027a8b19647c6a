//! What a module renders to: the operations `plan` shows and the executor performs.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use crate::value::Value;

/// A shell command run on the target host with `sh -c`.
///
/// `script` is the exact text sent; it never contains a secret. Secrets travel in `env` (or on
/// `stdin`) and are masked wherever the command is displayed.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub script: String,
    /// Environment for the command; [`Value::Secret`] entries are masked on display.
    pub env: BTreeMap<String, Value>,
    /// Bytes fed to the command's standard input (file content for `copy`, say).
    pub stdin: Option<Value>,
    /// Whether running it can change the host. Read-only probes are `false`.
    pub mutating: bool,
    /// Files on the host that the engine copies into the run's artifacts after the command
    /// exits 0 (a lost-transaction file, a sync report), in order.
    pub artifacts: Vec<Artifact>,
    /// What it does in the vendor's words, for the plan a reviewer reads: the essential command
    /// lines (`mupip replicate -source -shutdown -zerobacklog -timeout=30`), read by the module
    /// from the script it renders. `None` when the script itself is the summary (`shell`).
    pub summary: Option<Vec<String>>,
    /// Shared shell helpers the script calls ([`Helper`]): the wrapper installs each on the host
    /// once and sources it before the script, so `script` holds only the module's own lines.
    pub helpers: Vec<Helper>,
}

/// A library of shell functions shared by many commands (GT.M's `rb_run`, `rb_fail`, ...).
///
/// It is not part of any command's script: the engine sends it to each host once per run,
/// where it is kept under its sha256, and the wrapper sources it before the script runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Helper {
    /// What the plan calls it (`gtm`).
    pub name: &'static str,
    /// The shell text (function definitions only: sourcing it must not run anything).
    pub text: &'static str,
}

/// A file on the target host kept with the run: the engine fetches `path` after the command
/// succeeds and stores it as `artifacts/RUN/STEP@HOST/NAME` in the state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// Absolute path on the host.
    pub path: String,
    /// The file name it is kept under (one path component, unique within the step).
    pub name: String,
}

impl Command {
    /// A mutating shell command.
    pub fn new(script: impl Into<String>) -> Self {
        Self {
            script: script.into(),
            env: BTreeMap::new(),
            stdin: None,
            mutating: true,
            artifacts: Vec::new(),
            summary: None,
            helpers: Vec::new(),
        }
    }

    /// A read-only shell command.
    pub fn probe(script: impl Into<String>) -> Self {
        Self {
            mutating: false,
            ..Self::new(script)
        }
    }

    /// Builds a command line from words, each shell-quoted.
    pub fn argv<I, S>(words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::new(
            words
                .into_iter()
                .map(|w| quote(w.as_ref()))
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: Value) -> Self {
        self.env.insert(name.into(), value);
        self
    }

    #[must_use]
    pub fn stdin(mut self, content: Value) -> Self {
        self.stdin = Some(content);
        self
    }

    /// Sets the essential command lines shown in place of the script (see [`Command::summary`]).
    #[must_use]
    pub fn summarised(mut self, lines: Vec<String>) -> Self {
        self.summary = Some(lines);
        self
    }

    /// Sources the shared helper library `helper` before the script ([`Helper`]).
    #[must_use]
    pub fn helper(mut self, helper: Helper) -> Self {
        if !self.helpers.contains(&helper) {
            self.helpers.push(helper);
        }
        self
    }

    /// The script with the text of its helpers before it, as the host runs it once the wrapper
    /// has sourced them: for running a command without the wrapper (the modules' unit tests).
    pub fn inlined(&self) -> String {
        let mut text = String::new();
        for helper in &self.helpers {
            text.push_str(helper.text);
            text.push('\n');
        }
        text.push_str(&self.script);
        text
    }

    /// Keeps the host file `path` as the run artifact `name` once the command exits 0.
    #[must_use]
    pub fn collect(mut self, path: impl Into<String>, name: impl Into<String>) -> Self {
        self.artifacts.push(Artifact {
            path: path.into(),
            name: name.into(),
        });
        self
    }
}

/// The display form: `VAR=value ... script`, secrets masked, stdin summarised.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.env {
            write!(f, "{name}={} ", quote(&value.to_string()))?;
        }
        f.write_str(&self.script)?;
        match &self.stdin {
            Some(Value::Secret(_)) => f.write_str(" <<< ********"),
            Some(Value::Str(s)) => write!(f, " <<< ({} bytes)", s.len()),
            Some(other) => write!(f, " <<< {other}"),
            None => Ok(()),
        }
    }
}

/// Shell-quotes one word for POSIX `sh`. Plain words are left as they are; NUL bytes, which no
/// shell word can hold, are dropped rather than allowed to truncate the command.
pub fn quote(word: &str) -> String {
    let cleaned;
    let word = if word.contains('\0') {
        cleaned = word.replace('\0', "");
        &cleaned
    } else {
        word
    };
    shlex::try_quote(word).map_or_else(
        |_| format!("'{}'", word.replace('\'', r"'\''")),
        Cow::into_owned,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_hostile_values() {
        let hostile = r#"x"; touch /tmp/pwned; ""#;
        let cmd = Command::argv(["echo", hostile]);
        let words = shlex::split(&cmd.script).expect("re-parses");
        assert_eq!(words, vec!["echo".to_owned(), hostile.to_owned()]);
        assert_eq!(quote("plain-word_1.2"), "plain-word_1.2");
        assert_eq!(quote("it's"), r#""it's""#);
    }

    #[test]
    fn display_masks_secrets() {
        let cmd = Command::new("iris session X").env("PASSWORD", Value::Secret("hunter2".into()));
        assert!(!cmd.to_string().contains("hunter2"));
        let cmd = Command::new("cat").stdin(Value::Secret("hunter2".into()));
        assert!(!cmd.to_string().contains("hunter2"));
    }
}
