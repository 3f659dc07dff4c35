//! The Alerts, Rules, Silences and Contact points pages.
