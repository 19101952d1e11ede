//! Who is acting: the name recorded when a person acknowledges or resolves an alert from the
//! command line or the TUI (the store adds the `operator:` prefix itself).

/// This process's user, cleaned for the database and the log.
pub fn current() -> String {
    let name = uzers::get_current_username()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| rustix::process::getuid().as_raw().to_string());
    crate::sanitize::clean(&name)
}
