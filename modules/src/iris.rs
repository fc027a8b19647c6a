//! The InterSystems IRIS / HealthShare modules: `iris.start`, `iris.stop`, `iris.status`,
//! `iris.objectscript`, the mirror modules (`iris.mirror_create`, `iris.mirror_join`,
//! `iris.mirror_add_database`, `iris.mirror_activate`, `iris.mirror_status`,
//! `iris.zmirror_install`), tasks (`iris.task_export`, `iris.task_import`), productions
//! (`iris.production_stop`, `iris.production_start`) and `iris.csp_application`.
//!
//! They implement the HealthShare mirroring procedures of seed `000_fc9617c117eaba83.txt`
//! (chapter 4, "Mirroring an Existing Instance"), which recommends the `SYS.Mirror` API to
//! shorten the outage. Every module drives the vendor's own `iris` command, exactly as
//! InterSystems documents it:
//!
//! - `iris start INSTANCE`, `iris stop INSTANCE [quietly] [nofailover]` and `iris qlist INSTANCE`
//!   (the caret-separated, machine-readable form of `iris list`) for the instance;
//! - everything else is ObjectScript run in a terminal session, `iris session INSTANCE -U
//!   NAMESPACE`, with the code on standard input (never in an argument). Credentials, when the
//!   instance asks for them, are the first two lines of that input, and reach the host in the
//!   command's environment (`IRIS_USERNAME`, `IRIS_PASSWORD`), never in the script text. The
//!   engine lets a runbook read a secret parameter only in a step's `env:`, so a runbook sets
//!   `username:` and `env: {IRIS_PASSWORD: "{{ params.iris_password }}"}`.
//!
//! Why a session and not a REST API: the terminal is what the procedures and the vendor's
//! documentation use, it needs no web server, and it is available on every instance.
//!
//! Query then act: each mutating module first asks the instance (read-only) whether the work is
//! already done — the instance's status from `iris qlist`, the mirror name from
//! `$SYSTEM.Mirror.MirrorName()`, a database's `Mirrored`, `MirrorActivationRequired` and
//! `MirrorDBCatchup` from `SYS.Database`, a production's state from
//! `Ens.Director.GetProductionStatus` — and prints `runbook: unchanged` when it is. The same query
//! is the module's [`Module::check`].
//!
//! Session output is read through markers the code writes on lines of their own
//! (`RUNBOOK:OK`, `RUNBOOK:ERROR:<text>`, `RUNBOOK:VALUE:<value>`). The code spells them as
//! `"RUNBOOK"_":OK"`, so a terminal that echoes its input can never fake a marker. A `%Status`
//! that is an error is quoted as `$system.Status.GetErrorText` gives it; a session that ends
//! without a marker (an `<UNDEFINED>` or `<CLASS DOES NOT EXIST>` error, a refused login) is quoted
//! by its last line.
//!
//! This family is verified against a recording stand-in for the `iris` command
//! (`tests/standins/iris`), not against a real IRIS: IRIS cannot be installed on the test
//! machines.

mod csp_application;
mod mirror_activate;
mod mirror_add_database;
mod mirror_create;
mod mirror_join;
mod mirror_status;
mod objectscript;
mod production;
mod start;
mod status;
mod stop;
mod task;
mod vendor_lines;
mod zmirror_install;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::arg::Arg;
use crate::args::Args;
use crate::command::{Artifact, Command, quote};
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::query::{CHECK_FAILED, Declared, QueryThenAct, Shell};
use crate::value::Value;

/// Every IRIS module, for the registry.
pub fn all() -> Vec<Box<dyn Module>> {
    vec![
        Box::new(Iris(start::Start)),
        Box::new(Iris(stop::Stop)),
        Box::new(status::StatusModule),
        Box::new(objectscript::ObjectScriptModule),
        Box::new(Iris(mirror_create::MirrorCreate)),
        Box::new(Iris(mirror_join::MirrorJoin)),
        Box::new(Iris(mirror_add_database::MirrorAddDatabase)),
        Box::new(Iris(mirror_activate::MirrorActivate)),
        Box::new(mirror_status::MirrorStatusModule),
        Box::new(Iris(zmirror_install::ZmirrorInstall)),
        Box::new(Iris(task::TaskExport)),
        Box::new(Iris(task::TaskImport)),
        Box::new(Iris(production::ProductionStop)),
        Box::new(Iris(production::ProductionStart)),
        Box::new(Iris(csp_application::CspApplication)),
    ]
}

// ---------------------------------------------------------------------------------------------
// Parameters every module shares.

crate::params! {
    /// `instance`: every module names the instance it works on.
    struct InstanceParam {
        instance: ParamSpec::required(
            ParamType::String,
            "The IRIS instance name, as `iris list` shows it (for example `IRIS`)",
        ),
    }
}

crate::params! {
    /// `iris`: the vendor's command.
    struct IrisParam {
        iris: ParamSpec::optional(
            ParamType::Path,
            "The vendor's `iris` command (default `iris` from PATH, for example /usr/irissys/bin/iris)",
        )
        .with_default(Value::Str("iris".into())),
    }
}

crate::params! {
    /// `username` and `password`: the login an instance with password authentication asks for.
    struct Credentials {
        username: ParamSpec::optional(
            ParamType::String,
            "User the terminal session logs in as, when the instance asks for a login",
        ),
        password: ParamSpec::optional(
            ParamType::String,
            "Password of `username`; without it, the step's `env:` must set IRIS_PASSWORD. Sent on the session's standard input",
        ),
    }
}

/// `namespace`, with the module's own default.
fn namespace_param(name: &'static str, default: &str) -> ParamSpec {
    ParamSpec::optional(
        name,
        ParamType::String,
        "The namespace the session runs in (`iris session INSTANCE -U NAMESPACE`)",
    )
    .with_default(Value::Str(default.to_owned()))
}

/// The parameters of a module that only asks `iris`: instance, its own, then iris.
fn plain_params(own: Vec<ParamSpec>) -> Vec<ParamSpec> {
    let mut params = InstanceParam::specs();
    params.extend(own);
    params.extend(IrisParam::specs());
    params
}

/// The parameters of a module that runs ObjectScript: instance, its own, then iris, username,
/// password.
fn session_params(own: Vec<ParamSpec>) -> Vec<ParamSpec> {
    let mut params = plain_params(own);
    params.extend(Credentials::specs());
    params
}

// ---------------------------------------------------------------------------------------------
// Values.

/// A text argument that will be written into a script or into ObjectScript code: a secret is
/// refused (it would end up in the script text), a deferred value is its placeholder.
fn text(arg: Arg<'_>) -> Result<Option<String>, RenderError> {
    match arg.present() {
        None => Ok(None),
        Some(Value::Secret(_)) => Err(RenderError::new(
            arg.name(),
            "cannot be a secret: it is part of the command shown by `plan`",
        )),
        Some(Value::Str(s)) => Ok(Some(s.clone())),
        Some(other) => Ok(Some(other.to_string())),
    }
}

fn required_text(arg: Arg<'_>) -> Result<String, RenderError> {
    let value = text(arg)?.unwrap_or_default();
    if value.trim().is_empty() {
        return Err(RenderError::new(arg.name(), "must not be empty"));
    }
    Ok(value)
}

/// The instance name, checked: one word, as `iris` expects it.
fn instance(args: &Args) -> Result<String, RenderError> {
    let name = required_text(InstanceParam::read(args).instance)?;
    if name.chars().any(char::is_whitespace) {
        return Err(RenderError::new(
            "instance",
            format!("expected an instance name without blanks, found `{name}`"),
        ));
    }
    Ok(name)
}

/// An ObjectScript string literal: `"` doubled, control characters as `$c(N)`, so the code
/// stays on one line whatever the value holds.
fn os_str(value: &str) -> String {
    let mut out = String::from("\"");
    let mut open = true;
    for c in value.chars() {
        if c.is_control() {
            if open {
                out.push('"');
            }
            let _ = write!(out, "_$c({})", u32::from(c));
            open = false;
        } else {
            if !open {
                out.push_str("_\"");
                open = true;
            }
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
    }
    if open {
        out.push('"');
    }
    out
}

/// The ObjectScript line that reports a `%Status` variable through the markers.
fn report(status: &str) -> String {
    format!(
        "if $system.Status.IsOK({status}) {{ write !,\"RUNBOOK\"_\":OK\",! }} \
         else {{ write !,\"RUNBOOK\"_\":ERROR:\",$system.Status.GetErrorText({status}),! }}"
    )
}

/// The ObjectScript that writes one value line: `write !,"RUNBOOK"_":VALUE:",EXPR,!`.
fn value_line(expr: &str) -> String {
    format!("write !,\"RUNBOOK\"_\":VALUE:\",{expr},!")
}

// ---------------------------------------------------------------------------------------------
// The shell side.

/// How a module reaches one instance: the `iris` command, the instance, and the login.
struct Target {
    module: &'static str,
    iris: String,
    instance: String,
    /// `IRIS_USERNAME` and `IRIS_PASSWORD`, when the module logs in.
    env: BTreeMap<String, Value>,
}

impl Target {
    /// Without a login (`iris start`, `iris stop`, `iris qlist`).
    /// The read-only check of a module that only reads `iris qlist`: the instance answers.
    fn qlist_check(
        module: &'static str,
        args: &Args,
    ) -> Result<Option<Vec<Operation>>, RenderError> {
        let target = Self::plain(module, args)?;
        let script = format!(
            "{}{}exit 0",
            target.prelude(CHECK_FAILED, false),
            target.qlist()
        );
        Ok(Some(vec![Operation::Remote(Command::probe(script))]))
    }

    fn plain(module: &'static str, args: &Args) -> Result<Self, RenderError> {
        Ok(Self {
            module,
            iris: text(IrisParam::read(args).iris)?.unwrap_or_else(|| "iris".into()),
            instance: instance(args)?,
            env: BTreeMap::new(),
        })
    }

    /// With `username`, if given, and its password: the `password` argument, or else the
    /// `IRIS_PASSWORD` variable the step sets in its `env:` (where the engine lets a runbook
    /// put a secret parameter today).
    fn session(module: &'static str, args: &Args) -> Result<Self, RenderError> {
        let mut target = Self::plain(module, args)?;
        let p = Credentials::read(args);
        match (p.username.present(), p.password.present()) {
            (None, None) => {}
            (Some(user), password) => {
                target.env.insert("IRIS_USERNAME".into(), user.clone());
                if let Some(password) = password {
                    target.env.insert("IRIS_PASSWORD".into(), password.clone());
                }
            }
            (None, Some(_)) => {
                return Err(RenderError::new(
                    p.username.name(),
                    "is needed with `password`",
                ));
            }
        }
        Ok(target)
    }

    fn iris(&self) -> String {
        quote(&self.iris)
    }

    /// The shell functions a script uses: `fail` (exit `code` with the module's name and the
    /// message on stderr), `last` (the last non-blank line of a text), and for sessions
    /// `session NAMESPACE` (code on stdin, login first) and `value OUTPUT` (the value line of a
    /// session's output, in `$v`; fails when there is none).
    fn prelude(&self, code: i32, session: bool) -> String {
        let mut out = format!(
            "fail() {{ printf '%s: %s\\n' {} \"$*\" >&2; exit {code}; }}\n\
             last() {{ printf '%s\\n' \"$1\" | sed '/^[[:space:]]*$/d' | tail -n 1; }}\n",
            quote(self.module)
        );
        if session {
            let login = if self.env.is_empty() {
                String::new()
            } else {
                "printf '%s\\n' \"$IRIS_USERNAME\" \"$IRIS_PASSWORD\"; ".into()
            };
            let _ = writeln!(
                out,
                "session() {{ {{ {login}cat; }} | {} session {} -U \"$1\" 2>&1; }}",
                self.iris(),
                quote(&self.instance)
            );
            out.push_str(
                "value() { case $1 in *RUNBOOK:VALUE:*) ;; *) fail \"iris session failed: $(last \"$1\")\";; esac\n\
                 \x20 v=$(printf '%s\\n' \"$1\" | sed -n 's/.*RUNBOOK:VALUE://p' | head -n 1); }\n\
                 vendor() { e=$(printf '%s\\n' \"$2\" | sed -n 's/.*RUNBOOK:ERROR://p' | head -n 1)\n\
                 \x20 [ -z \"$e\" ] || fail \"$1 failed: $e\"\n\
                 \x20 case $2 in *RUNBOOK:OK*) ;; *) fail \"$1 failed: $(last \"$2\")\";; esac; }\n",
            );
        }
        out
    }

    /// Runs `lines` (then `halt`) in a session in `namespace`, its output in `$out`; a session
    /// that cannot run fails the script.
    #[allow(clippy::unused_self)] // a method, so calls read `target.run(..)` like the others
    fn run(&self, namespace: &str, lines: &[String]) -> String {
        let mut out = String::from("out=$(printf '%s\\n'");
        for line in lines.iter().map(String::as_str).chain(["halt"]) {
            let _ = write!(out, " \\\n  {}", quote(line));
        }
        let _ = writeln!(
            out,
            " | session {}) || fail \"iris session failed: $(last \"$out\")\"",
            quote(namespace)
        );
        out
    }

    /// Sets `q_*` from `iris qlist INSTANCE` (fields as the vendor prints them, `^`-separated)
    /// and `q_running` to `running` or `down`.
    fn qlist(&self) -> String {
        format!(
            "qlist=$({iris} qlist {inst} 2>&1) || fail \"iris qlist failed: $(last \"$qlist\")\"\n\
             IFS='^' read -r q_name q_dir q_version q_status q_cpf q_superserver q_web q_jdbc q_state \
             q_product q_mirror_type q_mirror_status q_datadir <<EOF\n\
             $qlist\n\
             EOF\n\
             [ -n \"$q_name\" ] || fail {unknown}\n\
             q_running=${{q_status%%,*}}\n",
            iris = self.iris(),
            inst = quote(&self.instance),
            unknown = quote(&format!("iris qlist knows no instance {}", self.instance)),
        )
    }

    fn attach(&self, mut cmd: Command) -> Command {
        cmd.env.extend(self.env.clone());
        cmd
    }
}

/// A query-then-act module: the read-only query sets shell variables, `in_state` is a shell
/// condition on them, `act` does the work.
struct Plan {
    target: Target,
    /// Whether the query or the act runs a session (so the prelude defines `session`).
    session: bool,
    query: String,
    in_state: String,
    act: String,
    artifacts: Vec<Artifact>,
}

/// What an [`Iris`] module provides.
trait Operate: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn params(&self) -> &[ParamSpec];
    fn plan(&self, args: &Args) -> Result<Plan, RenderError>;
}

/// A query-then-act IRIS module: its [`Plan`] is the declaration of the crate's one adapter.
struct Iris<T>(T);

/// How an IRIS script starts: the target's shell functions (with `session` and `value` when it
/// runs ObjectScript), and the login in the environment.
struct Session {
    target: Target,
    session: bool,
}

impl Shell for Session {
    fn prelude(&self, status: i32) -> String {
        self.target.prelude(status, self.session)
    }

    fn attach(&self, cmd: Command) -> Command {
        self.target.attach(cmd)
    }

    fn summarise(&self, cmd: Command) -> Command {
        vendor_lines::summarised(cmd)
    }
}

impl<T: Operate> QueryThenAct for Iris<T> {
    type Shell = Session;

    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn description(&self) -> &'static str {
        self.0.description()
    }

    fn params(&self) -> &[ParamSpec] {
        self.0.params()
    }

    fn declare(&self, args: &Args) -> Result<Declared<Session>, RenderError> {
        let plan = self.0.plan(args)?;
        Ok(Declared {
            shell: Session {
                target: plan.target,
                session: plan.session,
            },
            query: plan.query,
            in_state: plan.in_state,
            act: plan.act,
            artifacts: plan.artifacts,
        })
    }
}

#[cfg(test)]
mod testing {
    //! Rendering helpers for the IRIS unit tests.

    use crate::args::Args;
    use crate::command::Command;
    use crate::module::{Module, Operation};
    use crate::value::Value;

    pub fn s(text: &str) -> Value {
        Value::Str(text.to_owned())
    }

    pub fn args(module: &dyn Module, raw: &[(&str, Value)]) -> Args {
        let raw = raw
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        Args::check(module.params(), raw).expect("valid arguments")
    }

    pub fn render(module: &dyn Module, raw: &[(&str, Value)]) -> Command {
        match module
            .render(&args(module, raw))
            .expect("renders")
            .as_slice()
        {
            [Operation::Remote(cmd)] => cmd.clone(),
            other => panic!("expected one command, got {other:?}"),
        }
    }

    pub fn probe(module: &dyn Module, raw: &[(&str, Value)]) -> Command {
        match module
            .check(&args(module, raw))
            .expect("check renders")
            .as_deref()
        {
            Some([Operation::Remote(cmd)]) => {
                assert!(!cmd.mutating, "a check is a probe: {cmd}");
                cmd.clone()
            }
            other => panic!("expected one probe, got {other:?}"),
        }
    }

    pub fn render_error(module: &dyn Module, raw: &[(&str, Value)]) -> crate::RenderError {
        module.render(&args(module, raw)).expect_err("refused")
    }

    /// `sh -n`: the script parses.
    pub fn assert_parses(script: &str) {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", script])
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The ObjectScript lines a rendered script sends to `iris session`, in order, as the shell
    /// will unquote them.
    pub fn objectscript(script: &str) -> Vec<Vec<String>> {
        let mut sessions = Vec::new();
        for block in script.split("out=$(printf '%s\\n'").skip(1) {
            let end = block.find(" | session ").expect("a session pipe");
            let words = shlex::split(&block[..end].replace("\\\n", " ")).expect("quoted words");
            sessions.push(words);
        }
        sessions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use testing::s;

    #[test]
    fn objectscript_literals_double_quotes_and_escape_control_characters() {
        assert_eq!(os_str("HSSYS"), "\"HSSYS\"");
        assert_eq!(os_str("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(os_str("a\nb"), "\"a\"_$c(10)_\"b\"");
        assert_eq!(os_str("\t"), "\"\"_$c(9)");
        assert_eq!(os_str(""), "\"\"");
    }

    #[test]
    fn the_family_is_registered() {
        let registry = Registry::builtin();
        let names: Vec<_> = registry
            .names()
            .filter(|n| n.starts_with("iris."))
            .collect();
        assert_eq!(
            names,
            [
                "iris.csp_application",
                "iris.mirror_activate",
                "iris.mirror_add_database",
                "iris.mirror_create",
                "iris.mirror_join",
                "iris.mirror_status",
                "iris.objectscript",
                "iris.production_start",
                "iris.production_stop",
                "iris.start",
                "iris.status",
                "iris.stop",
                "iris.task_export",
                "iris.task_import",
                "iris.zmirror_install",
            ]
        );
        for module in all() {
            assert!(!module.description().contains('\n'), "{}", module.name());
            assert!(
                module.params().iter().any(|p| p.name == "instance"),
                "{}",
                module.name()
            );
        }
    }

    #[test]
    fn credentials_travel_in_the_environment_only() {
        let module = Iris(production::ProductionStop);
        let password = Value::Secret("hunter2".into());
        let raw = [
            ("instance", s("IRIS")),
            ("namespace", s("HSCOMMUNITY")),
            ("username", s("_SYSTEM")),
            ("password", password.clone()),
        ];
        for cmd in [
            testing::render(&module, &raw),
            testing::probe(&module, &raw),
        ] {
            assert!(!cmd.script.contains("hunter2"));
            assert!(!cmd.to_string().contains("hunter2"));
            assert_eq!(cmd.env.get("IRIS_PASSWORD"), Some(&password));
            assert_eq!(cmd.env.get("IRIS_USERNAME"), Some(&s("_SYSTEM")));
            assert!(cmd.script.contains(
                "session() { { printf '%s\\n' \"$IRIS_USERNAME\" \"$IRIS_PASSWORD\"; cat; } | iris session IRIS -U \"$1\" 2>&1; }"
            ));
        }
        let err = testing::render_error(
            &module,
            &[
                ("instance", s("IRIS")),
                ("namespace", s("NS")),
                ("password", password.clone()),
            ],
        );
        assert_eq!(err.arg, Some("username"));
    }

    #[test]
    fn secrets_are_refused_where_they_would_reach_the_script() {
        let module = Iris(mirror_create::MirrorCreate);
        let err = testing::render_error(
            &module,
            &[
                ("instance", s("IRIS")),
                ("mirror_name", Value::Secret("M".into())),
            ],
        );
        assert_eq!(err.arg, Some("mirror_name"));
        let err = testing::render_error(
            &module,
            &[("instance", s("my iris")), ("mirror_name", s("M"))],
        );
        assert_eq!(err.arg, Some("instance"));
    }

    #[test]
    fn every_script_parses_and_every_check_is_a_probe() {
        let samples: Vec<(&str, Vec<(&str, Value)>)> = vec![
            ("iris.start", vec![]),
            ("iris.stop", vec![]),
            ("iris.status", vec![]),
            ("iris.mirror_status", vec![]),
            ("iris.objectscript", vec![("code", s("write 1,!"))]),
            ("iris.mirror_create", vec![("mirror_name", s("M"))]),
            (
                "iris.mirror_join",
                vec![("mirror_name", s("M")), ("agent_address", s("a"))],
            ),
            ("iris.mirror_add_database", vec![("directory", s("/d/"))]),
            (
                "iris.mirror_activate",
                vec![("directories", Value::List(vec![s("/d/")]))],
            ),
            (
                "iris.zmirror_install",
                vec![("content", s("ZMIRROR\n quit\n"))],
            ),
            (
                "iris.task_export",
                vec![
                    ("tasks", Value::List(vec![s("t")])),
                    ("file", s("/tmp/t.xml")),
                ],
            ),
            (
                "iris.task_import",
                vec![
                    ("tasks", Value::List(vec![s("t")])),
                    ("file", s("/tmp/t.xml")),
                ],
            ),
            ("iris.production_stop", vec![("namespace", s("NS"))]),
            (
                "iris.production_start",
                vec![("namespace", s("NS")), ("production", s("P"))],
            ),
            (
                "iris.csp_application",
                vec![("namespace", s("NS")), ("application", s("/public"))],
            ),
        ];
        let registry = Registry::builtin();
        for (name, mut raw) in samples {
            raw.push(("instance", s("IRIS")));
            let module = registry.get(name).expect("registered");
            let cmd = testing::render(module, &raw);
            testing::assert_parses(&cmd.script);
            if let Some(ops) = module.check(&testing::args(module, &raw)).expect("check") {
                for op in ops {
                    let Operation::Remote(cmd) = op else {
                        panic!("{name}: a remote probe")
                    };
                    assert!(!cmd.mutating, "{name}");
                    testing::assert_parses(&cmd.script);
                }
            }
        }
    }
}
