//! `wsadmin.pause_retry_task` and `wsadmin.resume_retry_task`: stop, then restart, the replay of
//! past failed Communities lifecycle events.
//!
//! Seed `003_86f8010c22e46869.txt`, step 2
//! (`CommunitiesSchedulerService.pauseSchedulingTask("LifecycleRetryQueuedEvents")`) and step 6
//! (`CommunitiesSchedulerService.resumeSchedulingTask("LifecycleRetryQueuedEvents")`), after
//! `execfile("communitiesAdmin.py")`.
//!
//! Pausing a paused task (or resuming a scheduled one) leaves it as it is, so both are
//! idempotent. There is no check (`None`): the seed's procedure has no read-only command for the
//! task's state, and the output of the scheduler's detail commands is not specified there, so
//! nothing could be parsed reliably.

use std::sync::LazyLock;

use super::{Session, connection_params, jython, py_str};
use crate::args::Args;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The seed's task.
pub const RETRY_TASK: &str = "LifecycleRetryQueuedEvents";

/// The `wsadmin.pause_retry_task` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct PauseRetryTaskModule;

/// The `wsadmin.resume_retry_task` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResumeRetryTaskModule;

crate::params! {
    struct Params {
        task: ParamSpec::optional(ParamType::String, "The Communities scheduled task")
            .with_default(Value::Str(RETRY_TASK.into())),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| {
    let mut params = connection_params();
    params.extend(Params::specs());
    params
});

fn render(
    module: &'static str,
    method: &str,
    state: &str,
    args: &Args,
) -> Result<Vec<Operation>, RenderError> {
    let p = Params::read(args);
    let session = Session::new(module, args)?;
    let task = p.task.str().unwrap_or_else(|| RETRY_TASK.into());
    if task.is_empty() {
        return Err(RenderError::new(p.task.name(), "is empty"));
    }
    let body = jython(&[
        format!("execfile({})", py_str("communitiesAdmin.py")),
        format!("CommunitiesSchedulerService.{method}({})", py_str(&task)),
    ]);
    let json = serde_json::json!({"task": task, "state": state});
    Ok(vec![Operation::Remote(
        session.command("", &body, "", &json),
    )])
}

impl Module for PauseRetryTaskModule {
    fn name(&self) -> &'static str {
        "wsadmin.pause_retry_task"
    }

    fn description(&self) -> &'static str {
        "Pause the Communities LifecycleRetryQueuedEvents task (wsadmin)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        render(self.name(), "pauseSchedulingTask", "paused", args)
    }

    /// `None`: see the module documentation.
    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        self.render(args)?;
        Ok(None)
    }
}

impl Module for ResumeRetryTaskModule {
    fn name(&self) -> &'static str {
        "wsadmin.resume_retry_task"
    }

    fn description(&self) -> &'static str {
        "Resume the Communities LifecycleRetryQueuedEvents task (wsadmin)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        render(self.name(), "resumeSchedulingTask", "scheduled", args)
    }

    /// `None`: see the module documentation.
    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        self.render(args)?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::testing::{TempDir, check, remote, run, s, stderr, stdout};
    use crate::wsadmin::testing::install;

    #[test]
    fn renders_one_session_with_credentials_in_a_properties_file() {
        let cmd = remote(
            &PauseRetryTaskModule,
            &[
                ("host", s("dmgr.example.com")),
                ("port", Value::Int(8879)),
                ("user", s("wasadmin")),
            ],
        );
        assert_eq!(
            cmd.script,
            r#"cd /opt/IBM/WebSphere/AppServer/profiles/Dmgr01/bin || exit 1
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM
printf '%s\n' 'execfile("communitiesAdmin.py")
CommunitiesSchedulerService.pauseSchedulingTask("LifecycleRetryQueuedEvents")
print "runbook-wsadmin: done"' > "$work/step.py" || exit 1
[ -n "${WSADMIN_PASSWORD:-}" ] || { printf '%s: set WSADMIN_PASSWORD in the step'\''s env: (from a secret parameter)\n' wsadmin.pause_retry_task >&2; exit 1; }
{ printf 'com.ibm.SOAP.loginUserid=%s\n' wasadmin; printf 'com.ibm.SOAP.loginPassword='; printf '%s' "$WSADMIN_PASSWORD" | sed 's/\\/\\\\/g'; echo; } > "$work/login.properties" || exit 1
/opt/IBM/WebSphere/AppServer/profiles/Dmgr01/bin/wsadmin.sh -lang jython -conntype SOAP -host dmgr.example.com -port 8879 -p "$work/login.properties" -f "$work/step.py" < /dev/null > "$work/out" 2>&1
rc=$?
cat "$work/out" >&2
if [ "$rc" -ne 0 ] || ! grep -qxF 'runbook-wsadmin: done' "$work/out"; then
  why=$(grep -m 1 -E '[A-Z]{4}[0-9]{4}E|Exception|Error' "$work/out")
  printf '%s: wsadmin failed (exit %s): %s\n' wsadmin.pause_retry_task "$rc" "${why:-the script did not complete}" >&2
  exit 1
fi
printf '%s\n' '{"task":"LifecycleRetryQueuedEvents","state":"paused"}'"#
        );
        assert!(cmd.env.is_empty() && cmd.stdin.is_none());
        let resume = remote(&ResumeRetryTaskModule, &[("task", s("Other\"Task"))]);
        let body = jython(&[
            "execfile(\"communitiesAdmin.py\")".to_owned(),
            "CommunitiesSchedulerService.resumeSchedulingTask(\"Other\\\"Task\")".to_owned(),
        ]);
        assert!(
            resume.script.contains(&crate::quote(&body)),
            "{}",
            resume.script
        );
        assert!(!resume.script.contains("login.properties"));
        assert!(resume.env.is_empty());
    }

    #[test]
    fn refuses_bad_connection_arguments() {
        for (raw, arg) in [
            (vec![("wsadmin", s("bin/wsadmin.sh"))], "wsadmin"),
            (vec![("port", Value::Int(0))], "port"),
            (vec![("host", s("-x"))], "host"),
        ] {
            let err = PauseRetryTaskModule
                .render(&check(&PauseRetryTaskModule, &raw))
                .expect_err("refused");
            assert_eq!(err.arg, Some(arg), "{raw:?}");
        }
        let args = check(&PauseRetryTaskModule, &[]);
        assert_eq!(PauseRetryTaskModule.check(&args), Ok(None));
    }

    #[test]
    fn runs_against_the_stand_in_with_real_sh() {
        let dir = TempDir::new("wsadmin-pause");
        let wsadmin = install(&dir);
        let raw = [
            ("wsadmin", s(wsadmin.to_str().expect("utf-8"))),
            ("user", s("wasadmin")),
        ];
        let mut cmd = remote(&PauseRetryTaskModule, &raw);
        cmd.env
            .insert("WSADMIN_STANDIN_LOG".into(), s(&dir.str("log")));
        // Without the password in the environment the step stops before wsadmin.
        let out = run(&cmd, dir.path());
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("set WSADMIN_PASSWORD in the step's env:"),
            "{}",
            stderr(&out)
        );
        assert!(!dir.join("log").exists());
        cmd.env.insert("WSADMIN_PASSWORD".into(), s("pa\\ss word"));
        let out = run(&cmd, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "{\"task\":\"LifecycleRetryQueuedEvents\",\"state\":\"paused\"}\n"
        );
        assert!(stderr(&out).contains("WASX7209I"), "{}", stderr(&out));
        let log = std::fs::read_to_string(dir.join("log")).expect("log");
        assert!(log.contains("call CommunitiesSchedulerService.pauseSchedulingTask(\"LifecycleRetryQueuedEvents\")"), "{log}");
        assert!(
            log.contains("login user=wasadmin password=pa\\\\ss word"),
            "{log}"
        );
        assert!(
            !log.lines()
                .any(|l| l.starts_with("argv") && l.contains("pa\\ss"))
        );

        // A failing command fails the step, quoting wsadmin.
        let mut cmd = remote(
            &ResumeRetryTaskModule,
            &[("wsadmin", raw[0].1.clone()), ("task", s("NoSuchTask"))],
        );
        cmd.env
            .insert("WSADMIN_STANDIN_LOG".into(), s(&dir.str("log")));
        let out = run(&cmd, dir.path());
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out)
                .contains("wsadmin.resume_retry_task: wsadmin failed (exit 105): WASX7017E"),
            "{}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "");
    }
}
