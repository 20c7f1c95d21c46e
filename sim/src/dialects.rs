//! The factory of console sessions: which dialects the device speaks (`--dialect`)
//! and a new session of the one chosen. It is the one module that knows every
//! dialect, so that neither the [`Dialect`] trait nor a transport has to.

use crate::console::Reference;
use crate::dialect::Dialect;
use crate::menu::{Menu, MenuLogin};

/// Which dialect a console speaks, and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialectKind {
    /// SPEC §6.
    Reference,
    /// Numbered menus behind a login.
    Menu(MenuLogin),
}

/// The `--dialect` words.
pub const DIALECTS: &[&str] = &["reference", "menu"];

impl DialectKind {
    /// A new session of this dialect.
    pub fn session(&self) -> Box<dyn Dialect> {
        match self {
            DialectKind::Reference => Box::new(Reference::default()),
            DialectKind::Menu(login) => Box::new(Menu::new(login.clone())),
        }
    }
}
