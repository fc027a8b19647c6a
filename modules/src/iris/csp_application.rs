//! `iris.csp_application`: create the HealthShare Personal Community web application on the
//! new primary, exactly as seed 000 section 4.22 step 5 does it in the terminal:
//!
//! ```text
//! zn "PERSONAL_COMMUNITY_namespace"
//! set pCSPApplication = "/PUBLIC_WEB_APPLICATION_name"
//! set status = ##class(HSPortal.Utils).%CreatePublicCSPApplication(pCSPApplication)
//! ```
//!
//! (`%CreateWorkbenchCSPApplication` for the workbench application). The session runs in the
//! namespace (`-U`, the `zn`), and the module checks "that the return status is success". The
//! call creates `/public` and `/public/report`; the query asks `%SYS` whether both exist
//! (`Security.Applications.Exists`), and the module leaves them alone when they do.

use std::sync::LazyLock;

use super::{Operate, Plan, Target, os_str, report, required_text, session_params, value_line};
use crate::args::Args;
use crate::command::quote;
use crate::module::RenderError;
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

pub struct CspApplication;

crate::params! {
    struct Params {

        namespace: ParamSpec::required(ParamType::String,
            "The Personal Community namespace the code runs in",
        ),
        application: ParamSpec::required(ParamType::String,
            "The web application's path, with its leading slash (`/public`)",
        ),
        kind: ParamSpec::optional(ParamType::Enum(&["public", "workbench"]),
            "The public application (default) or the workbench application",
        )
        .with_default(Value::Str("public".into())),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| session_params(Params::specs()));

impl Operate for CspApplication {
    fn name(&self) -> &'static str {
        "iris.csp_application"
    }

    fn description(&self) -> &'static str {
        "Create the Personal Community public or workbench web application (HSPortal.Utils)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let p = Params::read(args);
        let target = Target::session(self.name(), args)?;
        let namespace = required_text(p.namespace)?;
        let application = required_text(p.application)?;
        if !application.starts_with('/') || application.len() < 2 {
            return Err(RenderError::new(
                p.application.name(),
                format!("expected a path such as /public, found `{application}`"),
            ));
        }
        let method = if p.kind.str().as_deref() == Some("workbench") {
            "%CreateWorkbenchCSPApplication"
        } else {
            "%CreatePublicCSPApplication"
        };
        let exists =
            |name: &str| format!("##class(Security.Applications).Exists({})", os_str(name));
        let query = format!(
            "{}value \"$out\"\n",
            target.run(
                "%SYS",
                &[value_line(&format!(
                    "{}_{}",
                    exists(&application),
                    exists(&format!("{application}/report"))
                ))]
            )
        );
        let act = format!(
            "{}vendor {} \"$out\"\n",
            target.run(
                &namespace,
                &[
                    format!("set pCSPApplication={}", os_str(&application)),
                    format!("set status=##class(HSPortal.Utils).{method}(pCSPApplication)"),
                    report("status"),
                ]
            ),
            quote(&format!("HSPortal.Utils.{method}"))
        );
        Ok(Plan {
            query,
            in_state: "[ \"$v\" = 11 ]".into(),
            act,
            session: true,
            artifacts: Vec::new(),
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iris::Iris;
    use crate::iris::testing::{objectscript, render, render_error, s};

    #[test]
    fn runs_the_seed_code_in_the_namespace() {
        let cmd = render(
            &Iris(CspApplication),
            &[
                ("instance", s("HSPC")),
                ("namespace", s("HSCOMMUNITY")),
                ("application", s("/public")),
            ],
        );
        let sessions = objectscript(&cmd.script);
        assert_eq!(
            sessions[0][0],
            "write !,\"RUNBOOK\"_\":VALUE:\",##class(Security.Applications).Exists(\"/public\")_##class(Security.Applications).Exists(\"/public/report\"),!"
        );
        assert_eq!(
            sessions[1][..3],
            [
                "set pCSPApplication=\"/public\"",
                "set status=##class(HSPortal.Utils).%CreatePublicCSPApplication(pCSPApplication)",
                "if $system.Status.IsOK(status) { write !,\"RUNBOOK\"_\":OK\",! } else { write !,\"RUNBOOK\"_\":ERROR:\",$system.Status.GetErrorText(status),! }",
            ]
        );
        assert!(cmd.script.contains(" | session HSCOMMUNITY) || fail"));
        let cmd = render(
            &Iris(CspApplication),
            &[
                ("instance", s("HSPC")),
                ("namespace", s("HSCOMMUNITY")),
                ("application", s("/workbench")),
                ("kind", s("workbench")),
            ],
        );
        assert!(
            cmd.script
                .contains("%CreateWorkbenchCSPApplication(pCSPApplication)")
        );
        assert_eq!(
            render_error(
                &Iris(CspApplication),
                &[
                    ("instance", s("HSPC")),
                    ("namespace", s("HSCOMMUNITY")),
                    ("application", s("public")),
                ]
            )
            .arg,
            Some("application")
        );
    }
}
