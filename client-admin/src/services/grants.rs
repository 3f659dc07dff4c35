//! What a missing privilege means: the exporter's collectors say "you need (at least one
//! of) the SUPER, SLAVE MONITOR privilege(s)"; the operator needs the GRANT that gives it.

use std::collections::BTreeSet;

use crate::config::{Service, ServiceType};

/// The privilege each MySQL error asks for (the least one where it offers a choice).
fn mysql_privileges(errors: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in errors {
        if let Some(rest) = e.split("you need (at least one of) the ").nth(1) {
            let list = rest.split(" privilege").next().unwrap_or("");
            let choices: Vec<&str> = list.split(',').map(str::trim).collect();
            // SUPER gives everything; the narrower one is what to grant.
            if let Some(p) = choices
                .iter()
                .find(|p| **p != "SUPER")
                .or(choices.first())
                .filter(|p| !p.is_empty())
            {
                out.insert((*p).to_owned());
            }
        } else if e.contains("command denied to user") {
            out.insert("SELECT".to_owned());
        }
    }
    out
}

/// `'name'@'host'` as MySQL quotes an account.
pub fn mysql_account(user: &str, host: &str) -> String {
    let q = |s: &str| s.replace('\\', "\\\\").replace('\'', "\\'");
    format!("'{}'@'{}'", q(user), q(host))
}

/// The account `CURRENT_USER()` answered (`user@host`), quoted as MySQL quotes it.
pub fn current_user_account(current: &str) -> Option<String> {
    current
        .trim()
        .rsplit_once('@')
        .map(|(user, host)| mysql_account(user, host))
}

/// The account the server most likely matched when `CURRENT_USER()` cannot be asked: the
/// user at the host it connects from.
pub fn likely_mysql_account(service: &Service) -> String {
    let host = match (&service.socket, service.host.as_deref()) {
        (Some(_), _) | (None, None | Some("localhost")) => "localhost",
        (None, Some(h)) => h,
    };
    mysql_account(&service.username, host)
}

/// The GRANT that gives what the collectors' `errors` say is missing, or, for PostgreSQL,
/// pg_monitor when `has_monitor` is false. `account` is MySQL's `'user'@'host'`.
pub fn grant(
    kind: ServiceType,
    account: &str,
    errors: &[String],
    has_monitor: Option<bool>,
) -> Option<String> {
    match kind {
        ServiceType::Mysql => {
            let privileges = mysql_privileges(errors);
            (!privileges.is_empty()).then(|| {
                format!(
                    "GRANT {} ON *.* TO {account};",
                    privileges.into_iter().collect::<Vec<_>>().join(", ")
                )
            })
        }
        ServiceType::Postgresql => (has_monitor == Some(false))
            .then(|| format!("GRANT pg_monitor TO \"{}\";", account.replace('"', "\"\""))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grant_names_what_is_missing() {
        let errors = vec![
            "Error 1227: Access denied; you need (at least one of) the PROCESS privilege(s) for this operation".to_owned(),
            "Error 1227: Access denied; you need (at least one of) the SUPER, SLAVE MONITOR privilege(s) for this operation".to_owned(),
            "Error 1227: Access denied; you need (at least one of) the PROCESS privilege(s) for this operation".to_owned(),
        ];
        assert_eq!(
            grant(
                ServiceType::Mysql,
                &mysql_account("perch", "localhost"),
                &errors,
                None
            )
            .as_deref(),
            Some("GRANT PROCESS, SLAVE MONITOR ON *.* TO 'perch'@'localhost';")
        );
        assert_eq!(grant(ServiceType::Mysql, "'a'@'b'", &[], None), None);
        assert_eq!(
            grant(ServiceType::Postgresql, "perch", &[], Some(false)).as_deref(),
            Some("GRANT pg_monitor TO \"perch\";")
        );
        assert_eq!(
            grant(ServiceType::Postgresql, "perch", &[], Some(true)),
            None
        );
        assert_eq!(mysql_account("o'k", "%"), "'o\\'k'@'%'");
        assert_eq!(
            current_user_account("bare@127.0.0.1\n").as_deref(),
            Some("'bare'@'127.0.0.1'")
        );
        assert_eq!(current_user_account(""), None);
    }
}
