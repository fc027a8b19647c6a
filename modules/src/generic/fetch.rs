//! `fetch`: keep a file from the target host with the run.
//!
//! Use it for what an operator or an auditor will want after the outage: a log, a report, the
//! output of a tool that wrote to a file. The engine copies the file into the run's state
//! directory (`runs/RUN/actions/STEP@HOST/artifacts/NAME`) once the step's command succeeds, and
//! says where in the run's events. A file that is missing or unreadable fails the step, so an
//! artifact the procedure relies on never goes missing silently.
//!
//! It only reads the host, so it is a probe and idempotent; its [`Module::check`] tells whether
//! the file is there to fetch (0) or not yet (1).

use std::sync::LazyLock;

use super::Words;
use crate::args::Args;
use crate::command::Command;
use crate::module::{CHECK_IN_STATE, CHECK_WOULD_CHANGE, Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};

/// The `fetch` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchModule;

crate::params! {
    struct Params {

        path: ParamSpec::required(ParamType::Path,
            "Absolute path of the file on the host",
        ),
        name: ParamSpec::optional(ParamType::String,
            "The name to keep it under (default: the file's own name)",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(Params::specs);

impl Module for FetchModule {
    fn name(&self) -> &'static str {
        "fetch"
    }

    fn description(&self) -> &'static str {
        "Keep a file from the host with the run's artifacts"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let (path, name) = target(args)?;
        let mut words = Words::default();
        let script = format!(
            "test -f {p} && test -r {p} || {{ echo {msg} >&2; exit 1; }}",
            p = words.path(&crate::value::Value::Str(path.clone())),
            msg = crate::command::quote(&format!("fetch: {path} is not a readable file")),
        );
        Ok(vec![Operation::Remote(
            Command::probe(script).collect(path, name),
        )])
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let (path, _) = target(args)?;
        Ok(Some(vec![Operation::Remote(Command::probe(format!(
            "if test -r {}; then exit {CHECK_IN_STATE}; else exit {CHECK_WOULD_CHANGE}; fi",
            crate::command::quote(&path)
        )))]))
    }
}

/// The host path (absolute) and the artifact name (one path component).
fn target(args: &Args) -> Result<(String, String), RenderError> {
    let p = Params::read(args);
    let path = p.path.str().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(RenderError::new(
            p.path.name(),
            format!("must be absolute, not `{path}`"),
        ));
    }
    let name = match p.name.present() {
        Some(name) => name.to_string(),
        None => path.rsplit('/').next().unwrap_or_default().to_owned(),
    };
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(RenderError::new(
            p.name.name(),
            format!("must be a plain file name, not `{name}`"),
        ));
    }
    Ok((path, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::testing::{check, s};

    #[test]
    fn renders_a_probe_that_keeps_the_file() {
        let args = check(&FetchModule, &[("path", s("/var/log/app it's.log"))]);
        let ops = FetchModule.render(&args).expect("renders");
        let Operation::Remote(cmd) = &ops[0] else {
            panic!("a remote command")
        };
        assert!(!cmd.mutating);
        assert_eq!(cmd.artifacts.len(), 1);
        assert_eq!(cmd.artifacts[0].path, "/var/log/app it's.log");
        assert_eq!(cmd.artifacts[0].name, "app it's.log");
        assert!(
            cmd.script.contains(r#"test -f "/var/log/app it's.log""#),
            "{}",
            cmd.script
        );
    }

    #[test]
    fn refuses_relative_paths_and_bad_names() {
        let args = check(&FetchModule, &[("path", s("log.txt"))]);
        assert_eq!(
            FetchModule.render(&args).expect_err("relative").arg,
            Some("path")
        );
        let args = check(&FetchModule, &[("path", s("/a/b")), ("name", s("../x"))]);
        assert_eq!(
            FetchModule
                .render(&args)
                .expect_err("a path in the name")
                .arg,
            Some("name")
        );
    }
}
