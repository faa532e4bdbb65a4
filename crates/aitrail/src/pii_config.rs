//! The PII section of `aitrail.toml`: one table per tenant (log), with documented defaults.
//!
//! ```toml
//! [tenants.default]
//! # Further fields holding identifiers, replaced by `ref:<keyed reference>` (default none).
//! pii_fields = ["attributes.customer_email", "actor.id"]
//! # Encrypt input, output and review.changes of events about a subject (default true).
//! encrypt = true
//!
//! [tenants.default.text]
//! # What happens to PII found in free text: redact | pseudonymize | keep
//! # (default pseudonymize for every kind).
//! email = "pseudonymize"
//! phone = "pseudonymize"
//! card = "redact"
//! ssn = "redact"
//! iban = "pseudonymize"
//! ip = "keep"
//! ```
//!
//! A tenant without a table gets the defaults. A mistake is an error naming the key and its
//! line (toml's own message for syntax, unknown keys and values; ours for field paths).

use aitrail_core::pii::scan::Kind;
use aitrail_core::pii::{Action, Policy, NOT_PII};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
struct Root {
    #[serde(default)]
    tenants: BTreeMap<String, Tenant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tenant {
    #[serde(default)]
    pii_fields: Vec<toml::Spanned<String>>,
    encrypt: Option<bool>,
    #[serde(default)]
    text: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Text {
    email: Option<Action>,
    phone: Option<Action>,
    card: Option<Action>,
    ssn: Option<Action>,
    iban: Option<Action>,
    ip: Option<Action>,
}

/// Every tenant's policy, as configured.
#[derive(Clone, Debug, Default)]
pub struct PiiConfig {
    tenants: BTreeMap<String, Policy>,
}

impl PiiConfig {
    /// Parses the tenant tables of `text` (the whole `aitrail.toml`; `name` for messages).
    pub fn parse(name: &str, text: &str) -> Result<PiiConfig> {
        let root: Root = toml::from_str(text).with_context(|| format!("reading {name}"))?;
        let line_of = |offset: usize| text[..offset.min(text.len())].lines().count().max(1);
        let mut tenants = BTreeMap::new();
        for (log, t) in root.tenants {
            let mut policy = Policy::default();
            for f in &t.pii_fields {
                let path = f.get_ref();
                let where_ = format!(
                    "{name} line {}: tenants.{log}.pii_fields",
                    line_of(f.span().start)
                );
                let shape_ok = !path.is_empty()
                    && path.split('.').all(|p| {
                        !p.is_empty()
                            && p.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    });
                if !shape_ok {
                    bail!("{where_}: {path:?} is not a dotted field path like \"attributes.customer_email\"");
                }
                if NOT_PII.contains(&path.as_str())
                    || path == "subject"
                    || path.starts_with("subject.")
                {
                    bail!(
                        "{where_}: {path:?} cannot be a PII field (aitrail needs it as it is; subject.id is always referenced)"
                    );
                }
                policy.fields.push(path.clone());
            }
            if let Some(e) = t.encrypt {
                policy.encrypt = e;
            }
            let set = [
                (Kind::Email, t.text.email),
                (Kind::Phone, t.text.phone),
                (Kind::Card, t.text.card),
                (Kind::Ssn, t.text.ssn),
                (Kind::Iban, t.text.iban),
                (Kind::Ip, t.text.ip),
            ];
            for (kind, action) in set {
                if let Some(a) = action {
                    policy.actions[kind as usize] = a;
                }
            }
            tenants.insert(log, policy);
        }
        Ok(PiiConfig { tenants })
    }

    /// The policy of `log`: its table, or the defaults.
    pub fn policy(&self, log: &str) -> Policy {
        self.tenants.get(log).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = PiiConfig::parse(
            "aitrail.toml",
            "origin = \"x\"\n[tenants.acme]\npii_fields = [\"attributes.email\"]\nencrypt = false\n[tenants.acme.text]\nip = \"keep\"\nssn = \"redact\"\n",
        )
        .unwrap();
        assert_eq!(c.policy("default"), Policy::default());
        let p = c.policy("acme");
        assert_eq!(p.fields, ["attributes.email"]);
        assert!(!p.encrypt);
        assert_eq!(p.action(Kind::Ip), Action::Keep);
        assert_eq!(p.action(Kind::Ssn), Action::Redact);
        assert_eq!(p.action(Kind::Email), Action::Pseudonymize);
    }

    #[test]
    fn mistakes_name_the_key_and_line() {
        let bad = |text: &str| format!("{:#}", PiiConfig::parse("aitrail.toml", text).unwrap_err());
        let e = bad("origin = \"x\"\n[tenants.acme.text]\nphone = \"hide\"\n");
        assert!(
            e.contains("line 3") && e.contains("hide") && e.contains("pseudonymize"),
            "{e}"
        );
        let e = bad("[tenants.acme]\nencrypt = true\nencrypted = 1\n");
        assert!(e.contains("line 3") && e.contains("encrypted"), "{e}");
        let e = bad("[tenants.acme]\n\npii_fields = [\"attributes.x\", \"task_id\"]\n");
        assert!(
            e.contains("line 3: tenants.acme.pii_fields") && e.contains("task_id"),
            "{e}"
        );
        let e = bad("[tenants.acme]\npii_fields = [\"a..b\"]\n");
        assert!(e.contains("line 2") && e.contains("a..b"), "{e}");
    }
}
