//! What an Editor and an Admin change: the built-in rules' settings, the contact points and
//! routing; and the operator's own rule files as last checked.

use super::client::excerpt;
use super::custom::{self, CustomFile};
use super::receivers::{ContactPoints, Receiver, ReceiverView, Routing};
use super::templates::{self, RuleSetting, Template, builtin};
use super::{Alerting, AlertingError, contacts_path, go_duration, rules_path, write_private};
use crate::process;
use http::Method;

impl Alerting {
    /// The built-in templates with their settings.
    pub async fn rule_settings(&self) -> Vec<(&'static Template, RuleSetting)> {
        let s = self.settings.lock().await;
        builtin()
            .iter()
            .map(|t| (t, s.rules.get(t.id).cloned().unwrap_or_default()))
            .collect()
    }

    /// Sets one template's setting: checked, tried by vmalert's dry run, saved, in force.
    pub async fn set_rule(&self, id: &str, setting: RuleSetting) -> Result<(), AlertingError> {
        let template = builtin()
            .iter()
            .find(|t| t.id == id)
            .ok_or_else(|| AlertingError::NotFound(format!("no built-in rule {id:?}")))?;
        setting.check(template).map_err(AlertingError::BadInput)?;
        let mut s = self.settings.lock().await;
        let mut rules = s.rules.clone();
        rules.insert(id.to_owned(), setting);
        let text = templates::render(&rules, &go_duration(self.config.evaluation_interval));
        // vmalert's dry run refuses a file without groups (every rule turned off), which
        // vmalert itself runs with.
        if let Some(vmalert) = process::find_binary(&self.config.vmalert_bin)
            && text.contains("\n- name:")
        {
            let trial = self.rules_dir().join(".trial.yml.check");
            write_private(&trial, text.as_bytes()).map_err(|e| AlertingError::Io(e.to_string()))?;
            let checked = custom::validate(&vmalert, &trial).await;
            let _ = std::fs::remove_file(&trial);
            checked.map_err(AlertingError::BadInput)?;
        }
        write_private(
            &rules_path(&self.config.data_dir),
            &serde_json::to_vec_pretty(&rules).unwrap_or_default(),
        )
        .map_err(|e| AlertingError::Io(e.to_string()))?;
        write_private(&self.builtin_path(), text.as_bytes())
            .map_err(|e| AlertingError::Io(e.to_string()))?;
        s.rules = rules;
        drop(s);
        self.reload_vmalert().await;
        Ok(())
    }

    /// The custom rule files as last checked.
    pub async fn custom_files(&self) -> Vec<CustomFile> {
        self.settings.lock().await.custom.clone()
    }

    /// Checks `<data-dir>/alerts/` now, and reloads vmalert when the rule set changed.
    pub async fn sync_custom(&self) {
        let Some(vmalert) = process::find_binary(&self.config.vmalert_bin) else {
            return;
        };
        let known = self.settings.lock().await.custom.clone();
        let (files, changed) = custom::sync(
            &vmalert,
            &self.config.data_dir.join("alerts"),
            &self.rules_dir(),
            &known,
        )
        .await;
        self.settings.lock().await.custom = files;
        if changed {
            self.reload_vmalert().await;
        }
    }

    /// The contact points (secrets hidden) and the routing.
    pub async fn contact_points(&self) -> (Vec<ReceiverView>, Routing) {
        let s = self.settings.lock().await;
        (
            s.contacts.receivers.iter().map(Receiver::view).collect(),
            s.contacts.routing.clone(),
        )
    }

    /// Applies a change to the contact points: checked, written, and taken by Alertmanager
    /// (whose own check is the last word: when it refuses, the previous set stays).
    pub async fn change_contacts(
        &self,
        change: impl FnOnce(&mut ContactPoints) -> Result<(), AlertingError>,
    ) -> Result<(), AlertingError> {
        let mut s = self.settings.lock().await;
        let mut next = s.contacts.clone();
        change(&mut next)?;
        next.check().map_err(AlertingError::BadInput)?;
        // Only what the running Alertmanager accepted is kept: while it is down, nothing
        // changes (a configuration it would refuse at its next start would keep it down).
        let bundled = self.config.alertmanager_url.is_none();
        if bundled && self.alertmanager.base().is_none() {
            return Err(AlertingError::Unavailable(
                "alertmanager",
                self.alertmanager.readiness().1,
            ));
        }
        self.write_alertmanager_config(&next)
            .map_err(|e| AlertingError::Io(e.to_string()))?;
        if bundled {
            let reloaded = self
                .call(&self.alertmanager, Method::POST, "/-/reload", None)
                .await;
            let refused = match reloaded {
                Ok((status, _)) if status.is_success() => None,
                Ok((_, body)) => Some(AlertingError::BadInput(format!(
                    "Alertmanager refused the configuration: {}",
                    excerpt(&body)
                ))),
                Err(e) => Some(e),
            };
            if let Some(e) = refused {
                // The previous configuration back, in the file and in Alertmanager.
                let _ = self.write_alertmanager_config(&s.contacts);
                let _ = self
                    .call(&self.alertmanager, Method::POST, "/-/reload", None)
                    .await;
                return Err(e);
            }
        }
        write_private(
            &contacts_path(&self.config.data_dir),
            &serde_json::to_vec_pretty(&next).unwrap_or_default(),
        )
        .map_err(|e| AlertingError::Io(e.to_string()))?;
        s.contacts = next;
        Ok(())
    }

    /// A contact point as stored (with its secrets), for an edit that keeps them.
    pub async fn receiver(&self, name: &str) -> Option<Receiver> {
        self.settings
            .lock()
            .await
            .contacts
            .receivers
            .iter()
            .find(|r| r.name == name)
            .cloned()
    }
}
