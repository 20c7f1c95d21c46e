//! The crate's closed sets of names — the settings (`model::Key`), the certificate
//! checks (`model::Check`) and the matrix dimensions (`matrix::Dim`) — are enums, so a
//! misspelt name does not compile. Their text is what SPEC, device profiles, case ids
//! and reports spell, and only that text is ever shown: `Display`, `Debug` (quoted, as
//! a string's), `Serialize` and the order (by name, as string keys sorted before) all
//! go through `as_str`, so a map or a record keyed by them reads exactly as one keyed
//! by the strings did. One macro writes the enum, its table of names and the one parse
//! from text (which refuses an unknown name with the given error).

/// `named! { #[doc] pub enum Name / UnknownName { Variant = "text", … } }`: the enum,
/// `ALL` (declaration order), `as_str`, `FromStr` (an unknown text gives
/// `UnknownName(text)`), and `Display`, `Debug`, `Ord`, `Serialize`, `Deserialize`
/// by the text.
macro_rules! named {
    (
        $(#[$meta:meta])*
        pub enum $name:ident / $err:ident {
            $($(#[$vmeta:meta])* $v:ident = $s:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $v,)*
        }

        impl $name {
            /// Every one, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];

            /// The name as SPEC, profiles, case ids and reports spell it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s,)*
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, $err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|k| k.as_str() == s)
                    .ok_or_else(|| $err(s.to_string()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use named;
