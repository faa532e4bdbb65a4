//! Connection URLs (building them, hiding their passwords) and scratch databases: a database
//! with a unique name, dropped with everything in it when the value is dropped. Tests and
//! `aitrail bench postgres` run in one each, so they never touch anyone's data.

use crate::error::{Result, StoreError};
use ::postgres::config::Host;
use ::postgres::{Config, NoTls};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Parses a `postgres://` URL (or key=value connection string).
pub fn parse_url(url: &str) -> Result<Config> {
    Config::from_str(url).map_err(|e| {
        StoreError::Schema(format!(
            "{}: not a PostgreSQL connection URL ({e}); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
            display_url(url)
        ))
    })
}

/// `url` with its password replaced by `***`, for messages and logs.
pub fn display_url(url: &str) -> String {
    if let Some(rest) = url.find("://").map(|i| i + 3) {
        let authority_end = url[rest..].find('/').map_or(url.len(), |i| rest + i);
        if let Some(at) = url[rest..authority_end].rfind('@').map(|i| rest + i) {
            if let Some(colon) = url[rest..at].find(':').map(|i| rest + i) {
                let mut shown = url.to_owned();
                shown.replace_range(colon + 1..at, "***");
                return hide_password_param(&shown);
            }
        }
        return hide_password_param(url);
    }
    // key=value form: hide the value after password=
    url.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***".to_owned()
            } else {
                kv.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Hides `password=...` in a URL's query string.
fn hide_password_param(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_owned();
    };
    let params: Vec<String> = url[q + 1..]
        .split('&')
        .map(|p| {
            if p.starts_with("password=") {
                "password=***".to_owned()
            } else {
                p.to_owned()
            }
        })
        .collect();
    format!("{}?{}", &url[..q], params.join("&"))
}

/// A URL for the server of `config`, as `user` (and `password`), on `dbname`.
pub fn url_for(config: &Config, user: &str, password: Option<&str>, dbname: &str) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) if h.contains(':') => format!("[{h}]"),
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => encode(&path.to_string_lossy()),
        None => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .map_or(String::new(), |p| format!(":{p}"));
    let auth = match password {
        Some(p) => format!("{}:{}", encode(user), encode(p)),
        None => encode(user),
    };
    format!("postgres://{auth}@{host}{port}/{}", encode(dbname))
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A database of its own on a server, dropped (with the roles registered on it) on drop.
pub struct ScratchDatabase {
    admin: Config,
    admin_user: String,
    admin_password: Option<String>,
    name: String,
    roles: Vec<String>,
    owner: Option<String>,
}

static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ScratchDatabase {
    /// Creates `<prefix>_<pid>_<n>_<random>` on the server of `admin_url`, whose user must
    /// be allowed to CREATE DATABASE (and CREATE ROLE with `own_owner`). With `own_owner` the
    /// database belongs to a new role `<name>_owner` (LOGIN, no superuser), dropped with it.
    pub fn create(admin_url: &str, prefix: &str, own_owner: bool) -> Result<ScratchDatabase> {
        let admin = parse_url(admin_url)?;
        let admin_user = admin
            .get_user()
            .map(str::to_owned)
            .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "postgres".to_owned()));
        let admin_password = admin
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let name = format!(
            "{prefix}_{}_{}_{}",
            std::process::id(),
            SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let mut db = ScratchDatabase {
            admin,
            admin_user,
            admin_password,
            name,
            roles: Vec::new(),
            owner: None,
        };
        let quote = super::schema::quote_ident;
        let mut sql = format!("CREATE DATABASE {}", quote(&db.name));
        if own_owner {
            let owner = db.role_name("owner");
            db.admin_execute(&format!("CREATE ROLE {} LOGIN NOSUPERUSER", quote(&owner)))?;
            sql += &format!(" OWNER {}", quote(&owner));
            db.owner = Some(owner);
        }
        db.admin_execute(&sql)?;
        Ok(db)
    }

    /// The role owning the database when it was created with `own_owner`.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL, as the admin user.
    pub fn url(&self) -> String {
        url_for(
            &self.admin,
            &self.admin_user,
            self.admin_password.as_deref(),
            &self.name,
        )
    }

    /// The database's URL as another role.
    pub fn url_as(&self, user: &str, password: Option<&str>) -> String {
        url_for(&self.admin, user, password, &self.name)
    }

    /// A role name unique to this database (`<database>_<suffix>`), dropped with it.
    pub fn role_name(&mut self, suffix: &str) -> String {
        let name = format!("{}_{suffix}", self.name);
        self.roles.push(name.clone());
        name
    }

    /// Runs SQL on the admin connection to the server (not to the scratch database).
    pub fn admin_execute(&self, sql: &str) -> Result<()> {
        self.admin.connect(NoTls)?.batch_execute(sql)?;
        Ok(())
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let Ok(mut client) = self.admin.connect(NoTls) else {
            eprintln!(
                "aitrail: could not connect to drop the scratch database {}",
                self.name
            );
            return;
        };
        let quote = super::schema::quote_ident;
        // One statement per call: DROP DATABASE refuses to run inside a multi-statement string.
        let mut statements = vec![format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote(&self.name)
        )];
        statements.extend(
            self.roles
                .iter()
                .map(|r| format!("DROP ROLE IF EXISTS {}", quote(r))),
        );
        for sql in statements {
            if let Err(e) = client.batch_execute(&sql) {
                eprintln!(
                    "aitrail: cleaning up the scratch database {}: {sql}: {e}",
                    self.name
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            display_url("postgres://app:s3cret@db.example:5432/trail"),
            "postgres://app:***@db.example:5432/trail"
        );
        assert_eq!(
            display_url("postgres://app@db/trail?password=x&sslmode=require"),
            "postgres://app@db/trail?password=***&sslmode=require"
        );
        assert_eq!(
            display_url("host=db user=app password=x dbname=trail"),
            "host=db user=app password=*** dbname=trail"
        );
        assert_eq!(display_url("postgres://db/trail"), "postgres://db/trail");
    }

    #[test]
    fn urls_are_built_from_a_config_and_parse_back() {
        let config = parse_url("postgres://admin:pw@127.0.0.1:5433/postgres").unwrap();
        let url = url_for(&config, "app user", Some("p@ss:/"), "trail_1");
        assert_eq!(
            url,
            "postgres://app%20user:p%40ss%3A%2F@127.0.0.1:5433/trail_1"
        );
        let back = parse_url(&url).unwrap();
        assert_eq!(back.get_user(), Some("app user"));
        assert_eq!(back.get_password(), Some(&b"p@ss:/"[..]));
        assert_eq!(back.get_dbname(), Some("trail_1"));
        assert!(parse_url("mysql://x").is_err());
    }
}
