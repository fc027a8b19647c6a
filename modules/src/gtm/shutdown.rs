//! `gtm.shutdown`: shut an instance down in the order the seed prescribes.
//!
//! Seed, "Shutting down an instance": an **originating** instance shuts down its Receiver
//! Server (when it is also a supplementary instance), then all active and passive Source
//! Servers, then runs `mupip rundown -region "*"`; a **propagating** (replicating) instance
//! shuts down its Receiver Server and Update Process first, then its Source Servers, then runs
//! down. Both orders stop the receiving side before the sending side; `kind` says which
//! instance this is and adds, for a propagating instance, a refusal to go on while the Receiver
//! Server is still alive. Application processes are the operator's: if any still holds the
//! database, the rundown fails quoting GT.M.
//!
//! Prints `{"kind": ..., "receiver_stopped": bool, "source_stopped": bool}`. Check: no server
//! alive and no shared memory left (as `gtm.rundown`).

use std::sync::LazyLock;

use super::stop::{RECEIVER_DOWN, open_ipc, timeout, timeout_param};
use super::{Env, lines, one, run, with_env};
use crate::args::Args;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};

#[derive(Debug, Clone, Copy, Default)]
pub struct ShutdownModule;

crate::params! {
    struct Params {

        kind: ParamSpec::required(ParamType::Enum(&["originating", "propagating"]),
            "The instance's role: originating, or propagating/replicating",
        ),
        timeout: timeout_param(30, "-timeout of each server shutdown"),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(Params::specs()));

impl Module for ShutdownModule {
    fn name(&self) -> &'static str {
        "gtm.shutdown"
    }

    fn description(&self) -> &'static str {
        "Shut an instance down: Receiver Server, Source Servers, then mupip rundown"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let env = Env::new(args)?;
        let kind = p.kind.str().unwrap_or_default();
        let t = timeout(p.timeout, 30)?;
        let mut body = vec![
            "rb_rstop=false; rb_sstop=false".to_owned(),
            "rb_receiver_health".to_owned(),
            format!(
                "if ! {{ {RECEIVER_DOWN}; }}; then {}; rb_rstop=true; fi",
                run("mupip", ["replicate", "-receiver", "-shutdown", &t])
            ),
        ];
        if kind == "propagating" {
            body.push("rb_receiver_health".to_owned());
            body.push(format!(
                "{RECEIVER_DOWN} || rb_fail \"the Receiver Server or Update Process is still alive; not stopping the Source Servers\""
            ));
        }
        body.extend([
            "rb_source_health".to_owned(),
            format!(
                "if [ $((rb_active + rb_passive)) -gt 0 ]; then {}; rb_sstop=true; fi",
                run("mupip", ["replicate", "-source", "-shutdown", &t])
            ),
            open_ipc(),
            format!("if [ -n \"$rb_open\" ]; then {}; fi", run("mupip", ["rundown", "-region", "*"])),
            format!(
                "printf '{{\"kind\": \"{kind}\", \"receiver_stopped\": %s, \"source_stopped\": %s}}\\n' \"$rb_rstop\" \"$rb_sstop\""
            ),
            "if [ \"$rb_rstop$rb_sstop\" = falsefalse ] && [ -z \"$rb_open\" ]; then rb_unchanged; fi".to_owned(),
        ]);
        Ok(one(env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let env = Env::new(args)?;
        let p = Params::read(args);
        timeout(p.timeout, 30)?;
        let body = [
            "rb_receiver_health".to_owned(),
            format!("{RECEIVER_DOWN} || exit 1"),
            "rb_source_health".to_owned(),
            "[ $((rb_active + rb_passive)) -eq 0 ] || exit 1".to_owned(),
            open_ipc(),
            "if [ -z \"$rb_open\" ]; then exit 0; else exit 1; fi".to_owned(),
        ];
        Ok(Some(one(env.probe(self.name(), 0, &lines(&body)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;

    #[test]
    fn the_receiver_goes_down_before_the_sources_then_rundown() {
        let raw = [
            ("dir", s("/g/B")),
            ("instance", s("B")),
            ("kind", s("propagating")),
            ("timeout", s("2s")),
        ];
        let script = &remotes(&ShutdownModule, &raw)[0].script;
        let r = script
            .find("-receiver -shutdown -timeout=2")
            .expect("receiver");
        let guard = script
            .find("not stopping the Source Servers")
            .expect("guard");
        let src = script.find("-source -shutdown -timeout=2").expect("source");
        let down = script.find("rundown -region").expect("rundown");
        assert!(r < guard && guard < src && src < down, "{script}");
        let raw = [
            ("dir", s("/g/A")),
            ("instance", s("A")),
            ("kind", s("originating")),
        ];
        assert!(
            !remotes(&ShutdownModule, &raw)[0]
                .script
                .contains("not stopping")
        );
    }
}
