//! The one place a component kind is registered: [`registry!`] turns a list of
//! `"kind" => Variant(Config)` lines into the config enum of a section (sources, sinks), the list
//! of kind names shown in messages, option parsing by kind, and access to the kind's behaviour
//! through the section's trait.
//!
//! ```
//! use heloflow::config::options::Options;
//! use heloflow::registry;
//!
//! /// What every shape provides.
//! pub trait Shape {
//!     /// Reads the shape's options.
//!     fn parse(options: &mut Options) -> Self
//!     where
//!         Self: Sized;
//!     /// Its area.
//!     fn area(&self) -> f64;
//! }
//!
//! #[derive(Clone, Debug, PartialEq)]
//! pub struct Square(f64);
//! impl Shape for Square {
//!     fn parse(options: &mut Options) -> Self {
//!         Square(options.number_in("side", 1.0, 1e-3..=1e3))
//!     }
//!     fn area(&self) -> f64 {
//!         self.0 * self.0
//!     }
//! }
//!
//! registry! {
//!     /// A configured shape.
//!     pub enum ShapeConfig: Shape, SHAPE_KINDS {
//!         /// A square.
//!         "square" => Square(Square),
//!     }
//! }
//!
//! assert_eq!(SHAPE_KINDS, ["square"]);
//! assert_eq!(ShapeConfig::Square(Square(2.0)).component().area(), 4.0);
//! assert_eq!(ShapeConfig::Square(Square(2.0)).kind(), "square");
//! ```

/// Declares a section's config enum from its registered kinds; see the module docs of
/// `heloflow::config::registry`. A kind line may end in `= parse`, a function (or closure) from
/// `&mut Options` to the config, or to `Option` of it, for kinds that share a config type; without
/// it the section trait's own `parse` is used.
#[macro_export]
macro_rules! registry {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $component:ident, $kinds:ident {
            $( $(#[$variant_meta:meta])* $kind:literal => $variant:ident($config:ty) $(= $parse:expr)? ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant($config), )+
        }

        /// Kind names a pipeline file may use, in registration order.
        pub const $kinds: &[&str] = &[$($kind),+];

        impl $name {
            /// Reads the options of a component of `kind`, or `None` when the kind is unknown (or
            /// its options could not be read at all; the problems are recorded in `options`).
            pub fn parse(kind: &str, options: &mut $crate::config::options::Options) -> Option<Self> {
                match kind {
                    $( $kind => Option::<$config>::from(
                        $crate::registry!(@parse $component, $config $(, $parse)?)(options)
                    ).map($name::$variant), )+
                    _ => None,
                }
            }

            /// The kind name as written in pipeline files.
            pub fn kind(&self) -> &'static str {
                match self {
                    $( $name::$variant(_) => $kind, )+
                }
            }

            /// The kind's behaviour.
            pub fn component(&self) -> &dyn $component {
                match self {
                    $( $name::$variant(config) => config, )+
                }
            }

            /// The kind's behaviour, for preparing it before a run.
            pub fn component_mut(&mut self) -> &mut dyn $component {
                match self {
                    $( $name::$variant(config) => config, )+
                }
            }
        }
    };
    (@parse $component:ident, $config:ty, $parse:expr) => {
        $parse
    };
    (@parse $component:ident, $config:ty) => {
        <$config as $component>::parse
    };
}
