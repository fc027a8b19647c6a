//! `template`: write a file on the target host from a template in the runbook.
//!
//! The same atomic, compare-first write as `copy` (see [`super::copy`]); only the content
//! argument is called `template`, to say what it is. The engine renders it — variables, loops,
//! outputs of earlier steps — before the module sees it, so the module receives the final text.
//! Unlike a `shell` template, values interpolated here are not shell-quoted: the text is file
//! content, and it travels on standard input, never through a shell.

use std::sync::LazyLock;

use super::copy::{check_file, file_params, render_file};
use crate::args::Args;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};

/// The `template` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateModule;

crate::params! {
    struct Params {
        template: ParamSpec::required(
            ParamType::String,
            "The file's content as a template; the engine renders it before the write",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| file_params(Params::specs()));

impl Module for TemplateModule {
    fn name(&self) -> &'static str {
        "template"
    }

    fn description(&self) -> &'static str {
        "Write a file from a rendered template, atomically, only when it differs"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        render_file(self.name(), args, Params::read(args).template)
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        check_file(self.name(), args, Params::read(args).template).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::copy::CopyModule;
    use crate::generic::testing::{TempDir, probe, remote, run, run_check, s, stdout};
    use crate::module::{CHECK_IN_STATE, CHECK_WOULD_CHANGE, UNCHANGED};
    use crate::value::Value;

    #[test]
    fn renders_like_copy_with_its_own_name() {
        let common = [
            ("dest", s("/etc/app.conf")),
            ("mode", s("0600")),
            ("owner", s("app")),
        ];
        let mut raw = common.to_vec();
        raw.push(("template", s("listen = 10.0.0.1\n")));
        let cmd = remote(&TemplateModule, &raw);
        let mut raw = common.to_vec();
        raw.push(("content", s("listen = 10.0.0.1\n")));
        let copy = remote(&CopyModule, &raw);
        assert_eq!(
            cmd.script,
            copy.script.replace("'copy: %s", "'template: %s")
        );
        assert!(
            cmd.script
                .contains("printf 'template: %s is a directory\\n'")
        );
        assert_eq!(cmd.stdin, Some(s("listen = 10.0.0.1\n")));
        assert!(TemplateModule.idempotent());
        assert!(
            TemplateModule
                .params()
                .iter()
                .any(|p| p.name == "template" && p.required)
        );
        assert!(TemplateModule.params().iter().all(|p| p.name != "content"));
    }

    #[test]
    fn writes_the_file() {
        let dir = TempDir::new("template-run");
        let dest = dir.str("out.conf");
        let cmd = remote(
            &TemplateModule,
            &[("dest", s(&dest)), ("template", s("x = 1\n"))],
        );
        assert_eq!(stdout(&run(&cmd, dir.path())), "changed\n");
        assert_eq!(stdout(&run(&cmd, dir.path())), format!("{UNCHANGED}\n"));
        assert_eq!(std::fs::read_to_string(&dest).expect("written"), "x = 1\n");
    }

    #[test]
    fn checks_like_copy_with_its_own_name() {
        let common = [("dest", s("/etc/app.conf")), ("group", s("adm"))];
        let cmd = probe(
            &TemplateModule,
            &[&common[..], &[("template", s("t\n"))]].concat(),
        );
        let copy = probe(
            &CopyModule,
            &[&common[..], &[("content", s("t\n"))]].concat(),
        );
        assert_eq!(
            cmd.script,
            copy.script.replace("'copy: %s", "'template: %s")
        );
        assert!(
            cmd.script
                .contains("printf 'template: %s is a directory\\n'")
        );
        assert_eq!(cmd.stdin, Some(s("t\n")));

        let dir = TempDir::new("template-check");
        let raw = [
            ("dest", s(&dir.str("out.conf"))),
            ("template", s("x = 1\n")),
        ];
        let (check, apply) = (probe(&TemplateModule, &raw), remote(&TemplateModule, &raw));
        assert_eq!(run_check(&check, dir.path()), CHECK_WOULD_CHANGE);
        assert!(run(&apply, dir.path()).status.success());
        assert_eq!(run_check(&check, dir.path()), CHECK_IN_STATE);
        std::fs::write(dir.join("out.conf"), "x = 2\n").expect("modify");
        assert_eq!(run_check(&check, dir.path()), CHECK_WOULD_CHANGE);

        let secret = Value::Secret("token = hunter2\n".into());
        let cmd = probe(
            &TemplateModule,
            &[("dest", s("/etc/t")), ("template", secret.clone())],
        );
        assert_eq!(cmd.stdin, Some(secret));
        assert!(!cmd.script.contains("hunter2") && !cmd.to_string().contains("hunter2"));
    }

    #[test]
    fn a_secret_template_stays_secret() {
        let secret = Value::Secret("token = hunter2\n".into());
        let cmd = remote(
            &TemplateModule,
            &[("dest", s("/etc/t")), ("template", secret.clone())],
        );
        assert_eq!(cmd.stdin, Some(secret));
        assert!(!cmd.to_string().contains("hunter2"));
    }
}
