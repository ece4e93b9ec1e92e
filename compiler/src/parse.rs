//! The raw shapes of the four XML files, as serde reads them.
//!
//! Unknown elements and attributes are reported with positions by the schema
//! check in [`crate::xml`] before serde runs; `deny_unknown_fields` is the
//! second line of defence.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XWorkflow {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "state", default)]
    pub states: Vec<XState>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XState {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@autorun", default)]
    pub autorun: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "action", default)]
    pub actions: Vec<XTransition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XTransition {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@resulting_state")]
    pub resulting_state: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "condition", default)]
    pub conditions: Vec<XCondition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XCondition {
    #[serde(rename = "@test")]
    pub test: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XActions {
    #[serde(rename = "action", default)]
    pub actions: Vec<XAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XAction {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@handler")]
    pub handler: String,
    #[serde(rename = "@allowed", default)]
    pub allowed: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XConfig {
    #[serde(rename = "@module")]
    pub module: String,
    #[serde(rename = "global", default)]
    pub globals: Vec<XCheckList>,
    #[serde(rename = "field", default)]
    pub fields: Vec<XFieldChecks>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XCheckList {
    #[serde(rename = "check", default)]
    pub checks: Vec<XCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XFieldChecks {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@order_types", default)]
    pub order_types: Option<String>,
    #[serde(rename = "check", default)]
    pub checks: Vec<XCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XCheck {
    #[serde(rename = "@engine", default)]
    pub engine: Option<String>,
    #[serde(rename = "@portal", default)]
    pub portal: Option<String>,
    #[serde(rename = "@severity", default)]
    pub severity: Option<String>,
    #[serde(rename = "$text", default)]
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XOrders {
    #[serde(rename = "order", default)]
    pub orders: Vec<XOrder>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XOrder {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@workflow")]
    pub workflow: String,
    #[serde(rename = "@key", default)]
    pub key: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "field", default)]
    pub fields: Vec<XField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XField {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@type")]
    pub ty: String,
    #[serde(rename = "@required", default)]
    pub required: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}
