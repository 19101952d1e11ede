//! uid → login name, looked up once per uid.
//!
//! Name lookups go through NSS (files, LDAP, SSSD…) and can be slow, so each uid is resolved once
//! and cached. A uid with no entry is shown by number and looked up again after a while, since
//! accounts get created on a live server.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sanitize;

/// Where names come from: the system's user database, or a fixed table in tests.
pub trait UserDirectory: Send {
    fn lookup(&self, uid: u32) -> Option<String>;
}

/// The system user database, through uzers (getpwuid_r, so NSS modules apply).
pub struct SystemUsers;

impl UserDirectory for SystemUsers {
    fn lookup(&self, uid: u32) -> Option<String> {
        uzers::get_user_by_uid(uid).map(|u| u.name().to_string_lossy().into_owned())
    }
}

/// A fixed table, for fixture trees.
#[derive(Debug, Clone, Default)]
pub struct StaticUsers(pub HashMap<u32, String>);

impl UserDirectory for StaticUsers {
    fn lookup(&self, uid: u32) -> Option<String> {
        self.0.get(&uid).cloned()
    }
}

/// Lookups of unknown uids are retried after this many calls to `tick`.
const RETRY_UNKNOWN_AFTER: u64 = 60;

pub struct UserNames {
    directory: Box<dyn UserDirectory>,
    known: HashMap<u32, Arc<str>>,
    unknown: HashMap<u32, (Arc<str>, u64)>,
    ticks: u64,
}

impl UserNames {
    pub fn new(directory: Box<dyn UserDirectory>) -> Self {
        UserNames {
            directory,
            known: HashMap::new(),
            unknown: HashMap::new(),
            ticks: 0,
        }
    }

    /// Called once per sample to age the negative cache.
    pub fn tick(&mut self) {
        self.ticks += 1;
    }

    pub fn name(&mut self, uid: u32) -> Arc<str> {
        if let Some(n) = self.known.get(&uid) {
            return n.clone();
        }
        if let Some((n, at)) = self.unknown.get(&uid)
            && self.ticks.saturating_sub(*at) < RETRY_UNKNOWN_AFTER
        {
            return n.clone();
        }
        match self.directory.lookup(uid) {
            Some(name) if !name.is_empty() => {
                let n: Arc<str> = Arc::from(sanitize::clean(&name));
                self.unknown.remove(&uid);
                self.known.insert(uid, n.clone());
                n
            }
            _ => {
                let n: Arc<str> = Arc::from(uid.to_string());
                self.unknown.insert(uid, (n.clone(), self.ticks));
                n
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_uid_shown_by_number_and_retried_later() {
        let mut names = UserNames::new(Box::new(StaticUsers::default()));
        assert_eq!(&*names.name(4321), "4321");
        assert_eq!(&*names.name(4321), "4321");
        for _ in 0..RETRY_UNKNOWN_AFTER {
            names.tick();
        }
        names.directory = Box::new(StaticUsers(HashMap::from([(4321, "newbie".into())])));
        assert_eq!(&*names.name(4321), "newbie");
    }

    #[test]
    fn hostile_names_are_cleaned() {
        let dir = StaticUsers(HashMap::from([(1001, "ev\x1b[2Jil\n".to_string())]));
        let mut names = UserNames::new(Box::new(dir));
        assert_eq!(&*names.name(1001), "ev[2Jil ");
    }
}
