//! `wsadmin.clear_event_queue`: clear the Communities replay event queue, for some remote
//! applications or for a whole resource type.
//!
//! Seed `003_86f8010c22e46869.txt`, step 3: when only remote applications lost data,
//! `CommunitiesQEventService.clearQueuedEventsByRemoteAppDefId("<remoteAppDefId>")` for each
//! affected one (`features`: activities → `Activities`, blogs → `Blog`, files → `Files`,
//! wikis → `Wiki`); when Communities itself lost data,
//! `CommunitiesQEventService.clearQueuedEventsByResourceType("community")` (`resource_type`).
//!
//! Clearing an empty queue changes nothing, so it is idempotent. There is no check (`None`): the
//! seed has no read-only command for the queue, so whether it holds events cannot be told.

use std::sync::LazyLock;

use super::{Session, connection_params, features, jython, py_str};
use crate::args::Args;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `wsadmin.clear_event_queue` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClearQueueModule;

crate::params! {
    struct Params {
        features: ParamSpec::optional(ParamType::List(Box::new(ParamType::Enum(super::FEATURES))),
        "Clear the queues of these remote applications (Communities did not fail)",
    ),
        resource_type: ParamSpec::optional(ParamType::String,
        "Clear the queue of every remote application for this resource type: `community` \
         (Communities failed)",
    ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| {
    let mut params = connection_params();
    params.extend(Params::specs());
    params
});

impl Module for ClearQueueModule {
    fn name(&self) -> &'static str {
        "wsadmin.clear_event_queue"
    }

    fn description(&self) -> &'static str {
        "Clear the Communities replay event queue by remote application or resource type (wsadmin)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let session = Session::new(self.name(), args)?;
        let by_feature = p.features.get().filter(|v| **v != Value::Null);
        let by_type = p.resource_type.get().filter(|v| **v != Value::Null);
        let mut lines = vec![format!("execfile({})", py_str("communitiesAdmin.py"))];
        let json = match (by_feature, by_type) {
            (Some(_), None) => {
                let apps: Vec<&str> = features(p.features)?.iter().map(|f| f.remote_app).collect();
                for app in &apps {
                    lines.push(format!(
                        "CommunitiesQEventService.clearQueuedEventsByRemoteAppDefId({})",
                        py_str(app)
                    ));
                }
                serde_json::json!({"cleared_remote_apps": apps})
            }
            (None, Some(kind)) => {
                let kind = kind.to_string();
                if kind.is_empty() {
                    return Err(RenderError::new(p.resource_type.name(), "is empty"));
                }
                lines.push(format!(
                    "CommunitiesQEventService.clearQueuedEventsByResourceType({})",
                    py_str(&kind)
                ));
                serde_json::json!({"cleared_resource_type": kind})
            }
            (Some(_), Some(_)) => {
                return Err(RenderError::new(
                    p.resource_type.name(),
                    "cannot be combined with `features`: clear by remote application or by \
                     resource type",
                ));
            }
            (None, None) => {
                return Err(RenderError {
                    arg: None,
                    message: "set `features` (the remote applications that lost data) or \
                              `resource_type: community` (Communities lost data)"
                        .into(),
                });
            }
        };
        Ok(vec![Operation::Remote(session.command(
            "",
            &jython(&lines),
            "",
            &json,
        ))])
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
    use crate::generic::testing::{check, list, remote, s};

    fn body(cmd: &crate::Command) -> &str {
        let start = cmd.script.find("printf '%s\\n' '").expect("jython") + 15;
        let end = cmd.script.find("' > \"$work/step.py\"").expect("end");
        &cmd.script[start..end]
    }

    #[test]
    fn clears_by_remote_app_def_id_or_by_resource_type() {
        let cmd = remote(
            &ClearQueueModule,
            &[("features", list(&["wikis", "activities"]))],
        );
        assert_eq!(
            body(&cmd),
            "execfile(\"communitiesAdmin.py\")\n\
             CommunitiesQEventService.clearQueuedEventsByRemoteAppDefId(\"Wiki\")\n\
             CommunitiesQEventService.clearQueuedEventsByRemoteAppDefId(\"Activities\")\n\
             print \"runbook-wsadmin: done\""
        );
        assert!(
            cmd.script
                .ends_with("'{\"cleared_remote_apps\":[\"Wiki\",\"Activities\"]}'")
        );
        let cmd = remote(&ClearQueueModule, &[("resource_type", s("community"))]);
        assert_eq!(
            body(&cmd),
            "execfile(\"communitiesAdmin.py\")\n\
             CommunitiesQEventService.clearQueuedEventsByResourceType(\"community\")\n\
             print \"runbook-wsadmin: done\""
        );
    }

    #[test]
    fn needs_exactly_one_way() {
        let err = ClearQueueModule
            .render(&check(&ClearQueueModule, &[]))
            .expect_err("none");
        assert_eq!(err.arg, None);
        let args = check(
            &ClearQueueModule,
            &[
                ("features", list(&["blogs"])),
                ("resource_type", s("community")),
            ],
        );
        assert_eq!(
            ClearQueueModule.render(&args).expect_err("both").arg,
            Some("resource_type")
        );
        let args = check(
            &ClearQueueModule,
            &[("features", list(&["blogs", "blogs"]))],
        );
        assert_eq!(
            ClearQueueModule.render(&args).expect_err("twice").arg,
            Some("features")
        );
        let errors = crate::Args::check(
            ClearQueueModule.params(),
            [("features".to_owned(), list(&["forums"]))]
                .into_iter()
                .collect(),
        )
        .expect_err("not a feature of the seed");
        assert_eq!(errors.len(), 1);
    }
}
