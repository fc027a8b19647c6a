//! One declaration per module parameter: the [`params!`](crate::params) macro.
//!
//! A module declares its parameters once, as the fields of a struct:
//!
//! ```ignore
//! params! {
//!     /// The parameters of `iris.start`.
//!     struct StartParams {
//!         cpf: ParamSpec::optional(ParamType::Path, "Start with this configuration file"),
//!         iris: iris_param(),
//!     }
//! }
//! ```
//!
//! Each field is the parameter's name (written once, as an identifier) and the constructor of
//! its [`ParamSpec`](crate::ParamSpec), called with the name as first argument
//! (`ParamSpec::optional("cpf", ..)`; a shared helper such as `iris_param` takes the name the
//! same way). From that one declaration the macro builds:
//!
//! - `StartParams::specs()`: the specs, in field order, which the compiler checks `with:` against
//!   and `runbook modules` and docs/modules/*.md list;
//! - `StartParams::read(&args)`: the struct of [`Arg`](crate::Arg)s, one per field, that the
//!   module reads (`p.cpf.str()`).
//!
//! A misspelt parameter (`p.cfp`) is a compile error instead of a silent `None`. Several groups
//! (parameters every module of a family shares) are several structs; a module's spec list is
//! their `specs()` concatenated in the order it wants.
//!
//! A macro rather than a derive: it is twenty lines of `macro_rules!`, needs no proc-macro crate,
//! and keeps the spec constructors (types, defaults, descriptions) ordinary expressions.

/// Declares a parameter struct; see the [module docs](crate::declare).
#[macro_export]
macro_rules! params {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $($ctor:ident)::+ ( $($arg:expr),* $(,)? )
                    $( . $method:ident ( $($marg:expr),* $(,)? ) )*
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[allow(dead_code)]
        $vis struct $name<'a> {
            $( $(#[$fmeta])* pub $field: $crate::Arg<'a>, )*
            _args: ::std::marker::PhantomData<&'a $crate::Args>,
        }

        #[allow(dead_code)]
        impl<'a> $name<'a> {
            /// The parameter specs, in declaration order.
            pub fn specs() -> ::std::vec::Vec<$crate::ParamSpec> {
                ::std::vec![
                    $( $($ctor)::+ (stringify!($field), $($arg),*) $( . $method ( $($marg),* ) )* ),*
                ]
            }

            /// The arguments, one typed field per parameter.
            pub fn read(args: &'a $crate::Args) -> Self {
                let _ = args;
                Self {
                    $( $field: args.arg(stringify!($field)), )*
                    _args: ::std::marker::PhantomData,
                }
            }
        }
    };
}
